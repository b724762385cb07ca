// Who this window is to a federation: its token, kept in VS Code's secret storage (never in settings),
// and a client id made once and kept in the extension's global state, so a restarted window rejoins as
// the same client.
import { randomUUID } from 'node:crypto';
import type * as vscode from 'vscode';

const TOKEN_SECRET = 'fedkseed.federationToken';
const CLIENT_ID_KEY = 'fedkseed.clientId';

export class FederationIdentity {
  constructor(private readonly context: vscode.ExtensionContext) {}

  async setToken(token: string): Promise<void> {
    await this.context.secrets.store(TOKEN_SECRET, token);
  }

  async hasToken(): Promise<boolean> {
    return Boolean(await this.context.secrets.get(TOKEN_SECRET));
  }

  /** The stored token, or '' for a federation that asks for none. */
  async token(): Promise<string> {
    return (await this.context.secrets.get(TOKEN_SECRET)) ?? '';
  }

  clientId(): string {
    let id = this.context.globalState.get<string>(CLIENT_ID_KEY);
    if (!id) {
      id = `vscode-${randomUUID().slice(0, 8)}`;
      void this.context.globalState.update(CLIENT_ID_KEY, id);
    }
    return id;
  }
}
