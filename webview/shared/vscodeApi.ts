// Typed access to the webview host API that VS Code injects into every webview page.
import type { HostToWebview, WebviewState, WebviewToHost } from '../../contracts/webview-messages';
import { parseHostToWebview, parseWebviewState } from '../../contracts/webview-messages';

interface RawVsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): RawVsCodeApi;

export interface HostChannel {
  post(message: WebviewToHost): void;
  /** The state saved by an earlier instance of this webview, if it was valid. */
  restoredState(): WebviewState | undefined;
  saveState(state: WebviewState): void;
  /** Calls `handler` for every valid message from the host; invalid ones are logged and dropped. */
  onMessage(handler: (message: HostToWebview) => void): void;
}

export function connectToHost(): HostChannel {
  const api = acquireVsCodeApi(); // may be called once per page
  return {
    post: (message) => api.postMessage(message),
    restoredState() {
      const parsed = parseWebviewState(api.getState());
      return parsed.ok ? parsed.value : undefined;
    },
    saveState: (state) => api.setState(state),
    onMessage(handler) {
      window.addEventListener('message', (event: MessageEvent<unknown>) => {
        const parsed = parseHostToWebview(event.data);
        if (parsed.ok) handler(parsed.value);
        else console.warn(`FedKSeed: ignored an invalid message from the extension: ${parsed.error}`);
      });
    },
  };
}
