// Which of the K shared seeds each local step uses: uniformly with replacement (FedKSeed) or from
// the round's probabilities p (FedKSeed-Pro). Deterministic for a given stream seed.
import { createRng, type Rng } from '../data/rng';
import { describeBound, HYPERPARAMETER_BOUNDS, withinBound } from '../../protocol/config-limits';

export class SeedSampler {
  private readonly cumulative: Float64Array | null;
  private readonly rng: Rng;

  constructor(
    readonly k: number,
    streamSeed: number,
    probabilities?: ArrayLike<number>,
  ) {
    if (!withinBound(HYPERPARAMETER_BOUNDS.k, k)) throw new RangeError(`K must be ${describeBound(HYPERPARAMETER_BOUNDS.k)}, got ${k}`);
    this.rng = createRng(streamSeed);
    this.cumulative = probabilities ? cumulativeOf(probabilities, k) : null;
  }

  next(): number {
    if (this.cumulative === null) return this.rng.nextInt(this.k);
    const c = this.cumulative;
    const u = this.rng.nextFloat() * c[c.length - 1];
    // First index whose cumulative mass exceeds u.
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

function cumulativeOf(p: ArrayLike<number>, k: number): Float64Array {
  if (p.length !== k) throw new RangeError(`probabilities hold ${p.length} values, K is ${k}`);
  const c = new Float64Array(k);
  let sum = 0;
  for (let j = 0; j < k; j++) {
    const v = p[j];
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`probability of seed ${j} is ${v}`);
    sum += v;
    c[j] = sum;
  }
  if (!(sum > 0)) throw new RangeError('probabilities sum to zero');
  return c;
}
