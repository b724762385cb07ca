;; Kernels of the rank-1 generator (trainer/zo/rank1.ts), WebAssembly SIMD. The host hashes the factors
;; (R + C per matrix and seed: few) and places them with the weights in this module's memory, which it
;; grows as it needs; every pointer is a byte address in it.
;;
;; Values are integers: u_r·v_c is an exact float32 (|u_r·v_c| < 2^17), so z·4096 = u_r·v_c costs one exact
;; multiply, and fl32(s'·z) and the add are the contract's two roundings (no fused multiply-add exists in
;; WebAssembly SIMD). The accumulator's products and sums are integers below 2^53: exact in any order.
(module
  (memory (export "memory") 1)

  ;; Rows of a block, row-major: w[r·cols + c] = fl32(w + fl32(s·(u[r]·v[c]))). u, v, w: f32.
  (func (export "passRows") (param $w i32) (param $u i32) (param $v i32) (param $rows i32) (param $cols i32) (param $s f32)
    (local $r i32) (local $c i32) (local $ur v128) (local $sv v128) (local $vec i32) (local $row i32)
    (local $x f32)
    (local.set $sv (f32x4.splat (local.get $s)))
    (local.set $vec (i32.and (local.get $cols) (i32.const -4)))
    (local.set $row (local.get $w))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $ur (v128.load32_splat (i32.add (local.get $u) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $c (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $c) (local.get $vec)))
            (v128.store (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))
              (f32x4.add
                (v128.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))
                (f32x4.mul (local.get $sv)
                  (f32x4.mul (local.get $ur) (v128.load (i32.add (local.get $v) (i32.shl (local.get $c) (i32.const 2))))))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cols)))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_u (local.get $c) (local.get $cols)))
            (f32.store (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))
              (f32.add
                (f32.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))
                (f32.mul (local.get $s)
                  (f32.mul (f32x4.extract_lane 0 (local.get $ur))
                           (f32.load (i32.add (local.get $v) (i32.shl (local.get $c) (i32.const 2))))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $cols) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows))))

  ;; Two seeds in order: w = fl32(fl32(w + fl32(a·(uA[r]·vA[c]))) + fl32(b·(uB[r]·vB[c]))).
  (func (export "passRows2") (param $w i32) (param $uA i32) (param $vA i32) (param $a f32)
        (param $uB i32) (param $vB i32) (param $b f32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $ua v128) (local $ub v128) (local $av v128) (local $bv v128)
    (local $vec i32) (local $row i32) (local $at i32) (local $off i32)
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $bv (f32x4.splat (local.get $b)))
    (local.set $vec (i32.and (local.get $cols) (i32.const -4)))
    (local.set $row (local.get $w))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $ua (v128.load32_splat (i32.add (local.get $uA) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $ub (v128.load32_splat (i32.add (local.get $uB) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $c (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $c) (local.get $vec)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $at (i32.add (local.get $row) (local.get $off)))
            (v128.store (local.get $at)
              (f32x4.add
                (f32x4.add (v128.load (local.get $at))
                  (f32x4.mul (local.get $av) (f32x4.mul (local.get $ua) (v128.load (i32.add (local.get $vA) (local.get $off))))))
                (f32x4.mul (local.get $bv) (f32x4.mul (local.get $ub) (v128.load (i32.add (local.get $vB) (local.get $off)))))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cols)))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $at (i32.add (local.get $row) (local.get $off)))
            (f32.store (local.get $at)
              (f32.add
                (f32.add (f32.load (local.get $at))
                  (f32.mul (local.get $a) (f32.mul (f32x4.extract_lane 0 (local.get $ua)) (f32.load (i32.add (local.get $vA) (local.get $off))))))
                (f32.mul (local.get $b) (f32.mul (f32x4.extract_lane 0 (local.get $ub)) (f32.load (i32.add (local.get $vB) (local.get $off)))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $cols) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows))))

  ;; S[r·cols + c] += Σ_j cu[r·m + j]·v[j·cols + c], f64, for rows and cols multiples of 4 (the host pads
  ;; with zeros). A 4×4 block of S stays in eight registers while every seed passes.
  (func (export "accumulate") (param $S i32) (param $cu i32) (param $v i32) (param $rows i32) (param $cols i32) (param $m i32)
    (local $r i32) (local $c i32) (local $j i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $x0 v128) (local $x1 v128)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local $s20 v128) (local $s21 v128) (local $s30 v128) (local $s31 v128)
    (local $cuRow i32) (local $vp i32) (local $sp i32) (local $stride i32) (local $cstride i32)
    (local.set $stride (i32.shl (local.get $cols) (i32.const 3)))
    (local.set $cstride (i32.shl (local.get $m) (i32.const 3)))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $s00 (v128.const i64x2 0 0)) (local.set $s01 (v128.const i64x2 0 0))
            (local.set $s10 (v128.const i64x2 0 0)) (local.set $s11 (v128.const i64x2 0 0))
            (local.set $s20 (v128.const i64x2 0 0)) (local.set $s21 (v128.const i64x2 0 0))
            (local.set $s30 (v128.const i64x2 0 0)) (local.set $s31 (v128.const i64x2 0 0))
            (local.set $cuRow (i32.add (local.get $cu) (i32.mul (local.get $r) (local.get $cstride))))
            (local.set $vp (i32.add (local.get $v) (i32.shl (local.get $c) (i32.const 3))))
            (local.set $j (i32.const 0))
            (block $seeds_done
              (loop $seeds
                (br_if $seeds_done (i32.ge_u (local.get $j) (local.get $m)))
                (local.set $x0 (v128.load (local.get $vp)))
                (local.set $x1 (v128.load offset=16 (local.get $vp)))
                (local.set $a0 (v128.load64_splat (local.get $cuRow)))
                (local.set $a1 (v128.load64_splat (i32.add (local.get $cuRow) (local.get $cstride))))
                (local.set $a2 (v128.load64_splat (i32.add (local.get $cuRow) (i32.shl (local.get $cstride) (i32.const 1)))))
                (local.set $a3 (v128.load64_splat (i32.add (local.get $cuRow) (i32.mul (local.get $cstride) (i32.const 3)))))
                (local.set $s00 (f64x2.add (local.get $s00) (f64x2.mul (local.get $a0) (local.get $x0))))
                (local.set $s01 (f64x2.add (local.get $s01) (f64x2.mul (local.get $a0) (local.get $x1))))
                (local.set $s10 (f64x2.add (local.get $s10) (f64x2.mul (local.get $a1) (local.get $x0))))
                (local.set $s11 (f64x2.add (local.get $s11) (f64x2.mul (local.get $a1) (local.get $x1))))
                (local.set $s20 (f64x2.add (local.get $s20) (f64x2.mul (local.get $a2) (local.get $x0))))
                (local.set $s21 (f64x2.add (local.get $s21) (f64x2.mul (local.get $a2) (local.get $x1))))
                (local.set $s30 (f64x2.add (local.get $s30) (f64x2.mul (local.get $a3) (local.get $x0))))
                (local.set $s31 (f64x2.add (local.get $s31) (f64x2.mul (local.get $a3) (local.get $x1))))
                (local.set $cuRow (i32.add (local.get $cuRow) (i32.const 8)))
                (local.set $vp (i32.add (local.get $vp) (local.get $stride)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $seeds)))
            (local.set $sp (i32.add (local.get $S)
              (i32.add (i32.mul (local.get $r) (local.get $stride)) (i32.shl (local.get $c) (i32.const 3)))))
            (v128.store (local.get $sp) (f64x2.add (v128.load (local.get $sp)) (local.get $s00)))
            (v128.store offset=16 (local.get $sp) (f64x2.add (v128.load offset=16 (local.get $sp)) (local.get $s01)))
            (local.set $sp (i32.add (local.get $sp) (local.get $stride)))
            (v128.store (local.get $sp) (f64x2.add (v128.load (local.get $sp)) (local.get $s10)))
            (v128.store offset=16 (local.get $sp) (f64x2.add (v128.load offset=16 (local.get $sp)) (local.get $s11)))
            (local.set $sp (i32.add (local.get $sp) (local.get $stride)))
            (v128.store (local.get $sp) (f64x2.add (v128.load (local.get $sp)) (local.get $s20)))
            (v128.store offset=16 (local.get $sp) (f64x2.add (v128.load offset=16 (local.get $sp)) (local.get $s21)))
            (local.set $sp (i32.add (local.get $sp) (local.get $stride)))
            (v128.store (local.get $sp) (f64x2.add (v128.load (local.get $sp)) (local.get $s30)))
            (v128.store offset=16 (local.get $sp) (f64x2.add (v128.load offset=16 (local.get $sp)) (local.get $s31)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cols)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $rows))))
)
