// Time as the round engine sees it: the current instant and one-shot timers. The server runs on the
// system clock; tests drive the engine with a fake one and move time by hand.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fire` once, `ms` milliseconds from now, unless cancelled first. */
  setTimer(ms: number, fire: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fire) {
    const handle = setTimeout(fire, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};
