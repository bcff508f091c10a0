/**
 * Parley's wire contracts: every shape that crosses the wire, as zod schemas with inferred types.
 * Server, SDK, OpenAPI document and tests all import from here.
 */
export * from './field-messages.ts';
export * from './ids.ts';
export * from './message.ts';
export * from './attachment.ts';
export * from './room.ts';
export * from './events.ts';
export * from './errors.ts';
export * from './legacy.ts';
export * from './safety.ts';
export * from './admin.ts';
export * from './push.ts';
export * from './moderation.ts';
