import { expectTypeOf, it } from 'vitest';
import type {
  BlockedPage,
  BlockedUser,
  ChatClient,
  ChatClientOptions,
  CreateReportInput,
  Message,
  OpenedRoom,
  Report,
  RoomEvent,
  RoomPage,
  RouterInputs,
  RouterOutputs,
  SendMessageInput,
  Unblocked,
} from '../client-sdk/index.ts';

// Type-level (checked by `npm run typecheck`): what the SDK infers from the server's router is exactly what the contracts say.
it('procedure outputs are the contract types', () => {
  expectTypeOf<RouterOutputs['messages']['send']>().toEqualTypeOf<Message>();
  expectTypeOf<RouterOutputs['rooms']['open']>().toEqualTypeOf<OpenedRoom>();
  expectTypeOf<RouterOutputs['rooms']['list']>().toEqualTypeOf<RoomPage>();
  expectTypeOf<RouterOutputs['messages']['list']['items']>().toEqualTypeOf<Message[]>();
  expectTypeOf<RouterOutputs['users']['block']>().toEqualTypeOf<BlockedUser>();
  expectTypeOf<RouterOutputs['users']['unblock']>().toEqualTypeOf<Unblocked>();
  expectTypeOf<RouterOutputs['users']['listBlocked']>().toEqualTypeOf<BlockedPage>();
  expectTypeOf<RouterOutputs['reports']['create']>().toEqualTypeOf<Report>();
  expectTypeOf<RouterInputs['reports']['create']>().toEqualTypeOf<CreateReportInput>();
});

it('procedure inputs are the contract inputs', () => {
  expectTypeOf<RouterInputs['messages']['send']>().toEqualTypeOf<SendMessageInput>();
  expectTypeOf<RouterInputs['messages']['onEvent']>().toHaveProperty('lastEventId');
});

it('subscription data is the RoomEvent union, with an id', () => {
  type Yielded = RouterOutputs['messages']['onEvent'] extends AsyncIterable<infer T> ? T : never;
  expectTypeOf<Yielded>().toEqualTypeOf<{ id: string; data: RoomEvent }>();
  expectTypeOf<ChatClient['close']>().toEqualTypeOf<() => Promise<void>>();
});

it('url is one address or a non-empty list of them', () => {
  expectTypeOf<'http://a'>().toExtend<ChatClientOptions['url']>();
  expectTypeOf<readonly ['http://a', 'http://b']>().toExtend<ChatClientOptions['url']>();
  expectTypeOf<readonly []>().not.toExtend<ChatClientOptions['url']>();
});
