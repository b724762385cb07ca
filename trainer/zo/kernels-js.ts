// Pure JavaScript kernels: the portable fallback and the reference the WASM kernels must match bit for bit.
import { PAIR_MULTIPLIER as PAIR_MULTIPLIER_EXPORT, ZQ as ZQ_EXPORT } from './generator';
import { checkOffset, checkStore, tableScale, type PerturbationKernels } from './kernels';

// Module-local bindings: imported bindings may compile to property reads in the hot loops.
const ZQ: Int16Array = ZQ_EXPORT;
const PAIR_MULTIPLIER: number = PAIR_MULTIPLIER_EXPORT;
const fround = Math.fround;
const imul = Math.imul;

/** One 32-bit hash word per parameter pair (fmix32 inlined: this is the hot loop). */
function word(premix: number, key: number): number {
  let h = premix ^ key;
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class JsKernels implements PerturbationKernels {
  readonly name = 'js' as const;

  perturb(w: Float32Array, offset: number, key: number, s: number): void {
    checkOffset(offset);
    const sp = tableScale(s);
    const n = w.length;
    let p = offset >>> 1;
    let t = 0;
    for (; t + 1 < n; t += 2, p++) {
      const h = word(imul(p, PAIR_MULTIPLIER), key);
      w[t] = fround(w[t] + fround(sp * ZQ[h >>> 16]));
      w[t + 1] = fround(w[t + 1] + fround(sp * ZQ[h & 0xffff]));
    }
    if (t < n) w[t] = fround(w[t] + fround(sp * ZQ[word(imul(p, PAIR_MULTIPLIER), key) >>> 16]));
  }

  perturb2(w: Float32Array, offset: number, keyA: number, a: number, keyB: number, b: number): void {
    checkOffset(offset);
    const ap = tableScale(a);
    const bp = tableScale(b);
    const n = w.length;
    let p = offset >>> 1;
    let t = 0;
    for (; t < n; t += 2, p++) {
      const m = imul(p, PAIR_MULTIPLIER);
      const ha = word(m, keyA);
      const hb = word(m, keyB);
      w[t] = fround(fround(w[t] + fround(ap * ZQ[ha >>> 16])) + fround(bp * ZQ[hb >>> 16]));
      if (t + 1 < n) w[t + 1] = fround(fround(w[t + 1] + fround(ap * ZQ[ha & 0xffff])) + fround(bp * ZQ[hb & 0xffff]));
    }
  }

  perturbStore(w: Float32Array, zq: Int16Array, offset: number, key: number, s: number): void {
    checkOffset(offset);
    checkStore(w, zq);
    const sp = tableScale(s);
    const n = w.length;
    let p = offset >>> 1;
    for (let t = 0; t < n; t += 2, p++) {
      const h = word(imul(p, PAIR_MULTIPLIER), key);
      const even = ZQ[h >>> 16];
      zq[t] = even;
      w[t] = fround(w[t] + fround(sp * even));
      if (t + 1 < n) {
        const odd = ZQ[h & 0xffff];
        zq[t + 1] = odd;
        w[t + 1] = fround(w[t + 1] + fround(sp * odd));
      }
    }
  }

  perturbStored(w: Float32Array, zq: Int16Array, s: number): void {
    checkStore(w, zq);
    const sp = tableScale(s);
    for (let t = 0; t < w.length; t++) w[t] = fround(w[t] + fround(sp * zq[t]));
  }

  perturb2Stored(w: Float32Array, zq: Int16Array, offset: number, a: number, keyB: number, b: number): void {
    checkOffset(offset);
    checkStore(w, zq);
    const ap = tableScale(a);
    const bp = tableScale(b);
    const n = w.length;
    let p = offset >>> 1;
    for (let t = 0; t < n; t += 2, p++) {
      const h = word(imul(p, PAIR_MULTIPLIER), keyB);
      const even = ZQ[h >>> 16];
      w[t] = fround(fround(w[t] + fround(ap * zq[t])) + fround(bp * even));
      zq[t] = even;
      if (t + 1 < n) {
        const odd = ZQ[h & 0xffff];
        w[t + 1] = fround(fround(w[t + 1] + fround(ap * zq[t + 1])) + fround(bp * odd));
        zq[t + 1] = odd;
      }
    }
  }

  accumulate(S: Float64Array, offset: number, keys: Uint32Array, coeffs: Float64Array): void {
    checkOffset(offset);
    if (keys.length !== coeffs.length) throw new RangeError('accumulate: keys and coeffs differ in length');
    const n = S.length;
    const m = keys.length;
    let p = offset >>> 1;
    // Each pair meets every seed with its two sums in locals; the premix is computed once per pair.
    for (let t = 0; t < n; t += 2, p++) {
      const pm = imul(p, PAIR_MULTIPLIER);
      let even = 0;
      let odd = 0;
      for (let j = 0; j < m; j++) {
        const h = word(pm, keys[j]);
        const c = coeffs[j];
        even += c * ZQ[h >>> 16];
        odd += c * ZQ[h & 0xffff];
      }
      S[t] += even;
      if (t + 1 < n) S[t + 1] += odd;
    }
  }

  materialize(w: Float32Array, w0: Float32Array, S: Float64Array, scale: number): void {
    const n = w.length;
    if (w0.length !== n || S.length !== n) throw new RangeError('materialize: w, w0 and S differ in length');
    for (let t = 0; t < n; t++) w[t] = fround(w0[t] + scale * S[t]);
  }
}
