import { expectTypeOf, it } from 'vitest';
import type {
  ChatClient,
  DeliveredEvent,
  DeliveredMarker,
  InboxEvent,
  MuteRoomInput,
  PushSubscribed,
  PushSubscribeInput,
  PushUnsubscribed,
  ReadMarkers,
  RoomEvent,
  RoomMute,
  RouterInputs,
  RouterOutputs,
  VapidPublicKey,
} from '../client-sdk/index.ts';

it('receipts and push procedures are the contract types', () => {
  expectTypeOf<RouterOutputs['messages']['markDelivered']>().toEqualTypeOf<DeliveredMarker>();
  expectTypeOf<RouterOutputs['rooms']['list']['items'][number]['other_delivered_seq']>().toEqualTypeOf<number>();
  expectTypeOf<Extract<RoomEvent, { type: 'delivered' }>>().toEqualTypeOf<DeliveredEvent>();
  expectTypeOf<Extract<InboxEvent, { type: 'delivered' }>>().toEqualTypeOf<DeliveredEvent>();
  expectTypeOf<RouterOutputs['push']['vapidPublicKey']>().toEqualTypeOf<VapidPublicKey>();
  expectTypeOf<RouterInputs['push']['subscribe']>().toEqualTypeOf<PushSubscribeInput>();
  expectTypeOf<RouterOutputs['push']['subscribe']>().toEqualTypeOf<PushSubscribed>();
  expectTypeOf<RouterOutputs['push']['unsubscribe']>().toEqualTypeOf<PushUnsubscribed>();
  expectTypeOf<RouterInputs['rooms']['mute']>().toEqualTypeOf<MuteRoomInput>();
  expectTypeOf<RouterOutputs['rooms']['mute']>().toEqualTypeOf<RoomMute>();
  expectTypeOf<RouterOutputs['rooms']['unmute']>().toEqualTypeOf<RoomMute>();
  expectTypeOf<ChatClient['deliveries']>().toEqualTypeOf<ReadMarkers>();
});
