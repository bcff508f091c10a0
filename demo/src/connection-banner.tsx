import { useEffect, useState } from 'preact/hooks';
import type { ChatClient } from '../../client-sdk/index.ts';

/** "Reconnecting…" while the SDK's WebSocket is down; room streams resume by themselves after. */
export function ConnectionBanner({ chat }: { chat: ChatClient }) {
  const [state, setState] = useState(chat.connection.get());
  useEffect(() => chat.connection.subscribe(setState), [chat]);
  if (state.status !== 'reconnecting') return null;
  return (
    <div class="banner" role="status" data-testid="reconnecting">
      Reconnecting… ({state.closeReason})
    </div>
  );
}
