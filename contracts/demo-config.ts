import { z } from 'zod';

/**
 * `GET /demo/config`: the server settings the demo web client shows to its user. Read by the demo
 * only, so it is not part of the SDK's exports.
 */
export const DemoConfig = z.object({
  /** MESSAGE_EDIT_WINDOW_SECONDS: how long after sending a sender may edit a message, in seconds. */
  messageEditWindowSeconds: z.number().int().min(0),
});
export type DemoConfig = z.infer<typeof DemoConfig>;
