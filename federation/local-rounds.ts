// The open round, its uploads and the connected clients of an embedded store, held in memory: one
// process serves the federation, so it is always the coordinator and nothing changes underneath it.
// After a restart every client reconnects and the open round is run again, so none of this needs disk.
// The embedded stores extend it: it is their half of FederationStore that lives in memory.
import type { OpenRoundRecord, UploadOutcome } from './store';

export abstract class LocalRounds {
  readonly coordinator = true;
  private open: OpenRoundRecord | null = null;
  private readonly uploads = new Map<number, Map<string, Uint8Array>>();
  private readonly present = new Set<string>();

  async saveOpenRound(open: OpenRoundRecord): Promise<void> {
    this.open = { ...open, assigned: [...open.assigned] };
    this.uploads.delete(open.round);
  }

  async loadOpenRound(): Promise<OpenRoundRecord | null> {
    return this.open && { ...this.open, assigned: [...this.open.assigned] };
  }

  async putUpload(round: number, clientId: string, frame: Uint8Array): Promise<UploadOutcome> {
    if (this.open?.round !== round) return 'closed';
    const kept = this.uploads.get(round) ?? new Map<string, Uint8Array>();
    this.uploads.set(round, kept);
    if (kept.has(clientId)) return 'duplicate';
    kept.set(clientId, Uint8Array.from(frame));
    return 'kept';
  }

  async uploadCount(round: number): Promise<number> {
    return this.uploads.get(round)?.size ?? 0;
  }

  async loadUploads(round: number): Promise<Map<string, Uint8Array>> {
    return new Map(this.uploads.get(round) ?? []);
  }

  async setPresent(clientId: string, present: boolean): Promise<void> {
    if (present) this.present.add(clientId);
    else this.present.delete(clientId);
  }

  async listPresent(): Promise<string[]> {
    return [...this.present];
  }

  watch(): void {}

  /** A commit of `round`: its uploads and open-round record go. */
  protected committed(round: number): void {
    for (const r of this.uploads.keys()) if (r <= round) this.uploads.delete(r);
    if (this.open && this.open.round <= round) this.open = null;
  }
}
