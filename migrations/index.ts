import { Migration20261125000000_init } from './Migration20261125000000_init.ts';

/** Every migration, oldest first. Listed explicitly so no file globbing depends on the runtime. */
export const migrationsList = [Migration20261125000000_init];
