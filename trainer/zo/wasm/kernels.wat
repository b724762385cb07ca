;; Perturbation kernels of the zeroth-order engine (docs/zo-engine.md), WebAssembly SIMD.
;;
;; Memory layout (filled by kernels-wasm.ts):
;;   [0, 256 KiB)         Zq as f32   (index·4)      used by the float path
;;   [256 KiB, 768 KiB)   Zq as f64   (index·8)      used by the exact accumulator
;;   [768 KiB, ...)       scratch and resident weights, managed by the loader
;; Both tables hold the same integers as the int16 table, so the results equal the contract's.
;;
;; Every kernel walks parameters in groups of 8 (4 pairs, one 32-bit word per pair), computing the
;; hash for 4 pairs at once, then gathers the 8 table entries with lane loads. A scalar loop handles
;; the last n mod 8 parameters. `off` is the global index of the first parameter and must be even.
(module
  (memory (export "memory") 17)

  (func $fmix (param $h i32) (result i32)
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0x85ebca6b)))
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 13))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0xc2b2ae35)))
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))

  ;; Byte address (·4) of parameter i's entry under key: high half of the word for even i, low for odd.
  (func $index4 (param $i i32) (param $key i32) (result i32)
    (local $word i32)
    (local.set $word
      (call $fmix (i32.xor (i32.mul (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 0x9e3779b1))
                           (local.get $key))))
    (if (result i32) (i32.and (local.get $i) (i32.const 1))
      (then (i32.and (i32.shl (local.get $word) (i32.const 2)) (i32.const 0x3fffc)))
      (else (i32.and (i32.shr_u (local.get $word) (i32.const 14)) (i32.const 0x3fffc)))))

  ;; w[t] = fl32(w[t] + fl32(s·Zq[index(off + t)]))   with s = fl32(scale / 4096) computed by the caller
  (func (export "perturb") (param $w i32) (param $n i32) (param $off i32) (param $key i32) (param $s f32)
    (local $end i32) (local $p v128) (local $h v128) (local $hi v128) (local $lo v128)
    (local $z0 v128) (local $z1 v128) (local $kv v128) (local $sv v128) (local $t i32)
    (local.set $p (i32x4.add (i32x4.splat (i32.shr_u (local.get $off) (i32.const 1)))
                             (v128.const i32x4 0 1 2 3)))
    (local.set $kv (i32x4.splat (local.get $key)))
    (local.set $sv (f32x4.splat (local.get $s)))
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $h (v128.xor (i32x4.mul (local.get $p) (v128.const i32x4 0x9e3779b1 0x9e3779b1 0x9e3779b1 0x9e3779b1))
                                (local.get $kv)))
        ;; fmix32, inlined (a call per group costs measurably)
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 13))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $hi (v128.and (i32x4.shr_u (local.get $h) (i32.const 14)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $lo (v128.and (i32x4.shl (local.get $h) (i32.const 2)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $z0 (v128.load32_lane 0 (i32x4.extract_lane 0 (local.get $hi)) (local.get $z0)))
        (local.set $z0 (v128.load32_lane 1 (i32x4.extract_lane 0 (local.get $lo)) (local.get $z0)))
        (local.set $z0 (v128.load32_lane 2 (i32x4.extract_lane 1 (local.get $hi)) (local.get $z0)))
        (local.set $z0 (v128.load32_lane 3 (i32x4.extract_lane 1 (local.get $lo)) (local.get $z0)))
        (local.set $z1 (v128.load32_lane 0 (i32x4.extract_lane 2 (local.get $hi)) (local.get $z1)))
        (local.set $z1 (v128.load32_lane 1 (i32x4.extract_lane 2 (local.get $lo)) (local.get $z1)))
        (local.set $z1 (v128.load32_lane 2 (i32x4.extract_lane 3 (local.get $hi)) (local.get $z1)))
        (local.set $z1 (v128.load32_lane 3 (i32x4.extract_lane 3 (local.get $lo)) (local.get $z1)))
        (v128.store (local.get $w)
          (f32x4.add (v128.load (local.get $w)) (f32x4.mul (local.get $z0) (local.get $sv))))
        (v128.store offset=16 (local.get $w)
          (f32x4.add (v128.load offset=16 (local.get $w)) (f32x4.mul (local.get $z1) (local.get $sv))))
        (local.set $p (i32x4.add (local.get $p) (v128.const i32x4 4 4 4 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (br $group)))
    (local.set $t (i32.and (local.get $n) (i32.const -8)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $t) (local.get $n)))
        (f32.store (local.get $w)
          (f32.add (f32.load (local.get $w))
                   (f32.mul (f32.load (call $index4 (i32.add (local.get $off) (local.get $t)) (local.get $key)))
                            (local.get $s))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tail))))

  ;; w[t] = fl32(fl32(w[t] + fl32(a·Zq_A)) + fl32(b·Zq_B)), one premix for both seeds.
  (func (export "perturb2") (param $w i32) (param $n i32) (param $off i32)
        (param $keyA i32) (param $a f32) (param $keyB i32) (param $b f32)
    (local $end i32) (local $p v128) (local $m v128) (local $h v128) (local $hi v128) (local $lo v128)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $kav v128) (local $kbv v128) (local $av v128) (local $bv v128) (local $t i32)
    (local.set $p (i32x4.add (i32x4.splat (i32.shr_u (local.get $off) (i32.const 1)))
                             (v128.const i32x4 0 1 2 3)))
    (local.set $kav (i32x4.splat (local.get $keyA)))
    (local.set $kbv (i32x4.splat (local.get $keyB)))
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $bv (f32x4.splat (local.get $b)))
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $m (i32x4.mul (local.get $p) (v128.const i32x4 0x9e3779b1 0x9e3779b1 0x9e3779b1 0x9e3779b1)))
        (local.set $h (v128.xor (local.get $m) (local.get $kav)))
        ;; fmix32, inlined (a call per group costs measurably)
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 13))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $hi (v128.and (i32x4.shr_u (local.get $h) (i32.const 14)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $lo (v128.and (i32x4.shl (local.get $h) (i32.const 2)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $a0 (v128.load32_lane 0 (i32x4.extract_lane 0 (local.get $hi)) (local.get $a0)))
        (local.set $a0 (v128.load32_lane 1 (i32x4.extract_lane 0 (local.get $lo)) (local.get $a0)))
        (local.set $a0 (v128.load32_lane 2 (i32x4.extract_lane 1 (local.get $hi)) (local.get $a0)))
        (local.set $a0 (v128.load32_lane 3 (i32x4.extract_lane 1 (local.get $lo)) (local.get $a0)))
        (local.set $a1 (v128.load32_lane 0 (i32x4.extract_lane 2 (local.get $hi)) (local.get $a1)))
        (local.set $a1 (v128.load32_lane 1 (i32x4.extract_lane 2 (local.get $lo)) (local.get $a1)))
        (local.set $a1 (v128.load32_lane 2 (i32x4.extract_lane 3 (local.get $hi)) (local.get $a1)))
        (local.set $a1 (v128.load32_lane 3 (i32x4.extract_lane 3 (local.get $lo)) (local.get $a1)))
        (local.set $h (v128.xor (local.get $m) (local.get $kbv)))
        ;; fmix32, inlined (a call per group costs measurably)
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 13))))
        (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
        (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
        (local.set $hi (v128.and (i32x4.shr_u (local.get $h) (i32.const 14)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $lo (v128.and (i32x4.shl (local.get $h) (i32.const 2)) (v128.const i32x4 0x3fffc 0x3fffc 0x3fffc 0x3fffc)))
        (local.set $b0 (v128.load32_lane 0 (i32x4.extract_lane 0 (local.get $hi)) (local.get $b0)))
        (local.set $b0 (v128.load32_lane 1 (i32x4.extract_lane 0 (local.get $lo)) (local.get $b0)))
        (local.set $b0 (v128.load32_lane 2 (i32x4.extract_lane 1 (local.get $hi)) (local.get $b0)))
        (local.set $b0 (v128.load32_lane 3 (i32x4.extract_lane 1 (local.get $lo)) (local.get $b0)))
        (local.set $b1 (v128.load32_lane 0 (i32x4.extract_lane 2 (local.get $hi)) (local.get $b1)))
        (local.set $b1 (v128.load32_lane 1 (i32x4.extract_lane 2 (local.get $lo)) (local.get $b1)))
        (local.set $b1 (v128.load32_lane 2 (i32x4.extract_lane 3 (local.get $hi)) (local.get $b1)))
        (local.set $b1 (v128.load32_lane 3 (i32x4.extract_lane 3 (local.get $lo)) (local.get $b1)))
        (v128.store (local.get $w)
          (f32x4.add (f32x4.add (v128.load (local.get $w)) (f32x4.mul (local.get $a0) (local.get $av)))
                     (f32x4.mul (local.get $b0) (local.get $bv))))
        (v128.store offset=16 (local.get $w)
          (f32x4.add (f32x4.add (v128.load offset=16 (local.get $w)) (f32x4.mul (local.get $a1) (local.get $av)))
                     (f32x4.mul (local.get $b1) (local.get $bv))))
        (local.set $p (i32x4.add (local.get $p) (v128.const i32x4 4 4 4 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (br $group)))
    (local.set $t (i32.and (local.get $n) (i32.const -8)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $t) (local.get $n)))
        (f32.store (local.get $w)
          (f32.add
            (f32.add (f32.load (local.get $w))
                     (f32.mul (f32.load (call $index4 (i32.add (local.get $off) (local.get $t)) (local.get $keyA)))
                              (local.get $a)))
            (f32.mul (f32.load (call $index4 (i32.add (local.get $off) (local.get $t)) (local.get $keyB)))
                     (local.get $b))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tail))))

  ;; S[t] += Σ_j C_j · Zq[index_j(off + t)] for m seeds (keys: u32[m], coeffs: f64[m] of integers).
  ;; Blocked: each group of 8 parameters meets every seed with its 8 sums held in 4 registers, so the
  ;; premix is computed once per pair and S is read and written once per call. All terms and partial
  ;; sums are integers below 2^53 (checked by the caller), so the order of the additions is irrelevant.
  (func (export "accumulate") (param $s i32) (param $n i32) (param $off i32)
        (param $keys i32) (param $coeffs i32) (param $m i32)
    (local $end i32) (local $p v128) (local $pm v128) (local $h v128) (local $hi v128) (local $lo v128)
    (local $c v128) (local $z v128) (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local $kp i32) (local $cp i32) (local $kend i32) (local $t i32) (local $sum f64) (local $i i32)
    (local.set $p (i32x4.add (i32x4.splat (i32.shr_u (local.get $off) (i32.const 1)))
                             (v128.const i32x4 0 1 2 3)))
    (local.set $end (i32.add (local.get $s) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 3))))
    (local.set $kend (i32.add (local.get $keys) (i32.shl (local.get $m) (i32.const 2))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $pm (i32x4.mul (local.get $p) (v128.const i32x4 0x9e3779b1 0x9e3779b1 0x9e3779b1 0x9e3779b1)))
        (local.set $acc0 (v128.const i64x2 0 0))
        (local.set $acc1 (v128.const i64x2 0 0))
        (local.set $acc2 (v128.const i64x2 0 0))
        (local.set $acc3 (v128.const i64x2 0 0))
        (local.set $kp (local.get $keys))
        (local.set $cp (local.get $coeffs))
        (block $seeds_done
          (loop $seed
            (br_if $seeds_done (i32.ge_u (local.get $kp) (local.get $kend)))
            (local.set $h (v128.xor (local.get $pm) (v128.load32_splat (local.get $kp))))
            ;; fmix32, inlined (a call per group costs measurably)
            (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
            (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b)))
            (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 13))))
            (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35)))
            (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
            (local.set $hi (v128.and (i32x4.shr_u (local.get $h) (i32.const 13)) (v128.const i32x4 0x7fff8 0x7fff8 0x7fff8 0x7fff8)))
            (local.set $lo (v128.and (i32x4.shl (local.get $h) (i32.const 3)) (v128.const i32x4 0x7fff8 0x7fff8 0x7fff8 0x7fff8)))
            (local.set $c (v128.load64_splat (local.get $cp)))
            (local.set $z (v128.load64_lane offset=262144 0 (i32x4.extract_lane 0 (local.get $hi)) (local.get $z)))
            (local.set $z (v128.load64_lane offset=262144 1 (i32x4.extract_lane 0 (local.get $lo)) (local.get $z)))
            (local.set $acc0 (f64x2.add (local.get $acc0) (f64x2.mul (local.get $z) (local.get $c))))
            (local.set $z (v128.load64_lane offset=262144 0 (i32x4.extract_lane 1 (local.get $hi)) (local.get $z)))
            (local.set $z (v128.load64_lane offset=262144 1 (i32x4.extract_lane 1 (local.get $lo)) (local.get $z)))
            (local.set $acc1 (f64x2.add (local.get $acc1) (f64x2.mul (local.get $z) (local.get $c))))
            (local.set $z (v128.load64_lane offset=262144 0 (i32x4.extract_lane 2 (local.get $hi)) (local.get $z)))
            (local.set $z (v128.load64_lane offset=262144 1 (i32x4.extract_lane 2 (local.get $lo)) (local.get $z)))
            (local.set $acc2 (f64x2.add (local.get $acc2) (f64x2.mul (local.get $z) (local.get $c))))
            (local.set $z (v128.load64_lane offset=262144 0 (i32x4.extract_lane 3 (local.get $hi)) (local.get $z)))
            (local.set $z (v128.load64_lane offset=262144 1 (i32x4.extract_lane 3 (local.get $lo)) (local.get $z)))
            (local.set $acc3 (f64x2.add (local.get $acc3) (f64x2.mul (local.get $z) (local.get $c))))
            (local.set $kp (i32.add (local.get $kp) (i32.const 4)))
            (local.set $cp (i32.add (local.get $cp) (i32.const 8)))
            (br $seed)))
        (v128.store (local.get $s) (f64x2.add (v128.load (local.get $s)) (local.get $acc0)))
        (v128.store offset=16 (local.get $s) (f64x2.add (v128.load offset=16 (local.get $s)) (local.get $acc1)))
        (v128.store offset=32 (local.get $s) (f64x2.add (v128.load offset=32 (local.get $s)) (local.get $acc2)))
        (v128.store offset=48 (local.get $s) (f64x2.add (v128.load offset=48 (local.get $s)) (local.get $acc3)))
        (local.set $p (i32x4.add (local.get $p) (v128.const i32x4 4 4 4 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 64)))
        (br $group)))
    (local.set $t (i32.and (local.get $n) (i32.const -8)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $i (i32.add (local.get $off) (local.get $t)))
        (local.set $sum (f64.const 0))
        (local.set $kp (local.get $keys))
        (local.set $cp (local.get $coeffs))
        (block $seeds_done
          (loop $seed
            (br_if $seeds_done (i32.ge_u (local.get $kp) (local.get $kend)))
            (local.set $sum
              (f64.add (local.get $sum)
                (f64.mul (f64.load offset=262144
                           (i32.shl (call $index4 (local.get $i) (i32.load (local.get $kp))) (i32.const 1)))
                         (f64.load (local.get $cp)))))
            (local.set $kp (i32.add (local.get $kp) (i32.const 4)))
            (local.set $cp (i32.add (local.get $cp) (i32.const 8)))
            (br $seed)))
        (f64.store (local.get $s) (f64.add (f64.load (local.get $s)) (local.get $sum)))
        (local.set $s (i32.add (local.get $s) (i32.const 8)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tail))))

  ;; w[t] = fl32(w0[t] + scale·S[t]) in f64 arithmetic, one rounding to f32 at the end.
  (func (export "materialize") (param $w i32) (param $w0 i32) (param $s i32) (param $n i32) (param $scale f64)
    (local $end i32) (local $sc v128) (local $b v128) (local $lo v128) (local $hi v128)
    (local.set $sc (f64x2.splat (local.get $scale)))
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $b (v128.load (local.get $w0)))
        (local.set $lo (f32x4.demote_f64x2_zero
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $b))
                     (f64x2.mul (v128.load (local.get $s)) (local.get $sc)))))
        (local.set $hi (f32x4.demote_f64x2_zero
          (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $b) (local.get $b)))
                     (f64x2.mul (v128.load offset=16 (local.get $s)) (local.get $sc)))))
        (v128.store (local.get $w)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $lo) (local.get $hi)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $w0 (i32.add (local.get $w0) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 32)))
        (br $quad)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (f32.store (local.get $w)
          (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $w0)))
                                   (f64.mul (f64.load (local.get $s)) (local.get $scale)))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $w0 (i32.add (local.get $w0) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 8)))
        (br $tail))))

  ;; w[t] += c: a plain read-modify-write pass, the memory floor the benchmark compares against.
  (func (export "addConstant") (param $w i32) (param $n i32) (param $c f32)
    (local $end i32) (local $cv v128)
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (v128.store (local.get $w) (f32x4.add (v128.load (local.get $w)) (local.get $cv)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (br $quad)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (f32.store (local.get $w) (f32.add (f32.load (local.get $w)) (local.get $c)))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (br $tail))))
)
