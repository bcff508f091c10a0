import { expectTypeOf, it } from 'vitest';
import {
  ParleyError,
  type AnyParleyError,
  type AppRouter,
  type ChatClient,
  type ChatClientOptions,
  type FieldErrorDetails,
  type FieldErrors,
  type Message,
  type NoDetails,
  type OpenedRoom,
  type ParleyErrorCode,
  type ParleyErrorDetails,
  type parleyErrorOf,
  type RateLimitDetails,
  type RoomEvent,
  type RoomPage,
  type RouterInputs,
  type RouterOutputs,
  type SendMessageInput,
  type TokenErrorDetails,
  type TRPCClientError,
  type BlockedPage,
  type BlockedUser,
  type CreateReportInput,
  type Report,
  type Unblocked,
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

it('narrowing a Parley error on its code types its details', () => {
  type Data = NonNullable<TRPCClientError<AppRouter>['data']>;
  expectTypeOf<Extract<Data, { parleyCode: 'RATE_LIMITED' }>['details']>().toEqualTypeOf<RateLimitDetails>();
  expectTypeOf<Extract<Data, { parleyCode: 'INVALID_INPUT' }>['details']>().toEqualTypeOf<FieldErrorDetails>();
  expectTypeOf<Extract<Data, { parleyCode: 'ROOM_NOT_FOUND' }>['details']>().toEqualTypeOf<NoDetails>();

  const fromWire = (data: Data) => {
    if (data.parleyCode === 'RATE_LIMITED') expectTypeOf(data.details.retryAfterSeconds).toEqualTypeOf<number | undefined>();
    // @ts-expect-error only RATE_LIMITED says when to retry
    if (data.parleyCode === 'INVALID_INPUT') void data.details.retryAfterSeconds;
  };
  const fromSdk = (failure: NonNullable<ReturnType<typeof parleyErrorOf>>) => {
    if (failure.code === 'INVALID_INPUT') expectTypeOf(failure.details.fields).toEqualTypeOf<FieldErrors | undefined>();
    if (failure.code === 'TOKEN_EXPIRED') expectTypeOf(failure.details).toEqualTypeOf<TokenErrorDetails>();
    // @ts-expect-error details differ by code: narrow first
    void failure.details.fields;
  };
  const thrown = (err: AnyParleyError) => {
    if (err.code === 'AUTH_UNAVAILABLE') expectTypeOf(err.details.reason).toEqualTypeOf<string | undefined>();
  };
  void [fromWire, fromSdk, thrown];
});

it('a ParleyError takes only its own code’s details, and none at all for any code', () => {
  expectTypeOf<{ [C in ParleyErrorCode]: {} extends ParleyErrorDetails<C> ? true : false }[ParleyErrorCode]>().toEqualTypeOf<true>();
  expectTypeOf(new ParleyError('RATE_LIMITED', 'slow down', { retryAfterSeconds: 1 })).toExtend<AnyParleyError>();
  // @ts-expect-error a missing room says nothing about retrying
  void new ParleyError('ROOM_NOT_FOUND', 'gone', { retryAfterSeconds: 1 });
  // @ts-expect-error field errors belong to INVALID_INPUT and FORBIDDEN
  void new ParleyError('TOKEN_INVALID', 'bad', { fields: { sub: ['x'] } });
});
