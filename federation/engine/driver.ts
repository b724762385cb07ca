// The driver of the round lifecycle: it holds the state, runs decide() (decide.ts) on each event and
// performs the effects in order, one at a time, through `perform`; an effect that completes with an
// event (a store write finished, an upload count read) feeds it back before the next effect runs. The
// awaits are here and in `perform`; effects that complete at once run synchronously, so an event whose
// effects touch no store is fully handled when dispatch returns.
import { decide } from './decide';
import type { Effect } from './effects';
import type { EngineEvent } from './inputs';
import type { EngineState } from './state';

/** Carries out one effect; what it returns (or resolves to) is the event it completed with, if any. */
export type Perform = (effect: Effect) => EngineEvent | null | void | Promise<EngineEvent | null | void>;

export class Driver {
  private current: EngineState;

  constructor(
    state: EngineState,
    private readonly perform: Perform,
  ) {
    this.current = state;
  }

  get state(): EngineState {
    return this.current;
  }

  /** Decides on `event` and performs its effects; resolves once they (and the events they fed back) are done. */
  dispatch(event: EngineEvent): Promise<void> {
    const { state, effects } = decide(this.current, event);
    this.current = state;
    return this.run(effects);
  }

  private async run(effects: readonly Effect[]): Promise<void> {
    for (const effect of effects) {
      const done = this.perform(effect);
      const next = done instanceof Promise ? await done : done;
      if (next) await this.dispatch(next);
    }
  }
}
