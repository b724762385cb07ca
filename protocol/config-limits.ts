// What a federation's configuration may hold so that every client accepts its WELCOME: the bounds the
// codec checks (codec.ts, readConfig) and the server's command line refuses beyond, from one place.
import { MAX_PAIRS } from './messages';

/** The largest value of the protocol's u32 fields: rounds, clients per round, round numbers. */
export const MAX_U32 = 0xffffffff;

/** The most rounds a federation may have: round numbers travel as u32. */
export const MAX_ROUNDS = MAX_U32;

/** The most local steps per round (τ) a client accepts: an upload never carries more pairs. */
export const MAX_TAU = MAX_PAIRS;
