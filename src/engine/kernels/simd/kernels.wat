;; Elementwise kernels of the wasm training step in WebAssembly SIMD (four float32 lanes), run on tensors where
;; they lie in tfjs's wasm heap: the module imports that memory, so every pointer below is a byte offset into it
;; and nothing is copied. Arithmetic is float32, as the tf ops' (each op rounds once, in the same order as the
;; formulas in the TypeScript kernels that call these). Assembled by scripts/build-simd.mjs into kernels-wasm.ts;
;; the `memory` import is rewritten there for the shared memory of tfjs's threaded build.
(module
  (import "env" "memory" (memory 1))

  ;; AdamW, PyTorch's: m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g²;
  ;; p' = p (1 - lr wd) - m' / (sqrt(v' / (1 - b2^t)) + eps) · lr / (1 - b1^t).
  ;; p, g, m, v are read and p', m', v' written at their own offsets (fresh tensors: a variable's memory may be
  ;; shared with a clone), n elements each.
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $p1 i32) (param $m1 i32) (param $v1 i32) (param $n i32)
    (param $decay f32) (param $beta1 f32) (param $c1 f32) (param $beta2 f32) (param $c2 f32)
    (param $stepSize f32) (param $invBc2 f32) (param $eps f32)
    (local $i i32) (local $end4 i32) (local $o i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $decay4 v128) (local $beta14 v128) (local $c14 v128) (local $beta24 v128) (local $c24 v128)
    (local $step4 v128) (local $inv4 v128) (local $eps4 v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $decay4 (f32x4.splat (local.get $decay)))
    (local.set $beta14 (f32x4.splat (local.get $beta1)))
    (local.set $c14 (f32x4.splat (local.get $c1)))
    (local.set $beta24 (f32x4.splat (local.get $beta2)))
    (local.set $c24 (f32x4.splat (local.get $c2)))
    (local.set $step4 (f32x4.splat (local.get $stepSize)))
    (local.set $inv4 (f32x4.splat (local.get $invBc2)))
    (local.set $eps4 (f32x4.splat (local.get $eps)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4
      (loop $lanes
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $o))))
        (local.set $mv
          (f32x4.add
            (f32x4.mul (local.get $beta14) (v128.load (i32.add (local.get $m) (local.get $o))))
            (f32x4.mul (local.get $c14) (local.get $gv))))
        (local.set $vv
          (f32x4.add
            (f32x4.mul (local.get $beta24) (v128.load (i32.add (local.get $v) (local.get $o))))
            (f32x4.mul (f32x4.mul (local.get $c24) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m1) (local.get $o)) (local.get $mv))
        (v128.store (i32.add (local.get $v1) (local.get $o)) (local.get $vv))
        (v128.store (i32.add (local.get $p1) (local.get $o))
          (f32x4.sub
            (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $o))) (local.get $decay4))
            (f32x4.mul
              (f32x4.div (local.get $mv)
                (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vv) (local.get $inv4))) (local.get $eps4)))
              (local.get $step4))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $lanes)))
    ;; The last n mod 4 elements, one at a time, the same arithmetic.
    (block $done
      (loop $rest
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $o))))
        (local.set $ms
          (f32.add
            (f32.mul (local.get $beta1) (f32.load (i32.add (local.get $m) (local.get $o))))
            (f32.mul (local.get $c1) (local.get $gs))))
        (local.set $vs
          (f32.add
            (f32.mul (local.get $beta2) (f32.load (i32.add (local.get $v) (local.get $o))))
            (f32.mul (f32.mul (local.get $c2) (local.get $gs)) (local.get $gs))))
        (f32.store (i32.add (local.get $m1) (local.get $o)) (local.get $ms))
        (f32.store (i32.add (local.get $v1) (local.get $o)) (local.get $vs))
        (f32.store (i32.add (local.get $p1) (local.get $o))
          (f32.sub
            (f32.mul (f32.load (i32.add (local.get $p) (local.get $o))) (local.get $decay))
            (f32.mul
              (f32.div (local.get $ms)
                (f32.add (f32.sqrt (f32.mul (local.get $vs) (local.get $invBc2))) (local.get $eps)))
              (local.get $stepSize))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rest)))
  )

  ;; ---- RMSNorm and LayerNorm (wasm-norm.ts), rows of d floats, d a multiple of 4 ----

  ;; Row statistics, left in $mean and $rstd: mean (0 unless centered) and rstd = 1 / sqrt(Σ (x - mean)² / d + eps),
  ;; float32 sums over four lanes. A sum of squares past float32's range is Infinity, so rstd is 0 and the row
  ;; collapses to zeros, as the tf ops and HF's float32 norms have it (the divergence check names that collapse).
  (global $mean (mut f32) (f32.const 0))
  (global $rstd (mut f32) (f32.const 0))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  (func $stats (param $x i32) (param $d i32) (param $centered i32) (param $eps f32)
    (local $j i32) (local $acc v128) (local $mean4 v128) (local $c v128) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (global.set $mean (f32.const 0))
    (if (local.get $centered)
      (then
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $e1 (loop $l1
          (br_if $e1 (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $x) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l1)))
        (global.set $mean (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d))))))
    (local.set $mean4 (f32x4.splat (global.get $mean)))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $j (i32.const 0))
    (block $e2 (loop $l2
      (br_if $e2 (i32.ge_u (local.get $j) (local.get $bytes)))
      (local.set $c (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $mean4)))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $c) (local.get $c))))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $l2)))
    (global.set $rstd
      (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d))) (local.get $eps))))))

  ;; y = (x - mean)·rstd·w (+ b where hasBias), row by row.
  (func (export "normForward")
    (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $rows i32) (param $d i32)
    (param $eps f32) (param $centered i32) (param $hasBias i32)
    (local $r i32) (local $j i32) (local $bytes i32) (local $mean4 v128) (local $rstd4 v128) (local $v v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (call $stats (local.get $x) (local.get $d) (local.get $centered) (local.get $eps))
      (local.set $mean4 (f32x4.splat (global.get $mean)))
      (local.set $rstd4 (f32x4.splat (global.get $rstd)))
      (local.set $j (i32.const 0))
      (block $e (loop $l
        (br_if $e (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v
          (f32x4.mul
            (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $mean4)) (local.get $rstd4))
            (v128.load (i32.add (local.get $w) (local.get $j)))))
        (if (local.get $hasBias)
          (then (local.set $v (f32x4.add (local.get $v) (v128.load (i32.add (local.get $b) (local.get $j)))))))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $v))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l)))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (local.get $bytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; dx = rstd·(g - mean(g)) - (x - mean)·k, g = dy·w, k = rstd³·Σ g·(x - mean) / d (mean(g) only when centered).
  ;; Where rstd is 0 (an overflowed row) this is 0, or NaN where Σ g·(x - mean) or x is not finite: the tf ops'
  ;; chain rule through the same overflow.
  (func (export "normInputGrad")
    (param $x i32) (param $w i32) (param $dy i32) (param $dx i32) (param $rows i32) (param $d i32)
    (param $eps f32) (param $centered i32)
    (local $r i32) (local $j i32) (local $bytes i32) (local $mean4 v128) (local $rstd f32)
    (local $sg v128) (local $sgx v128) (local $g v128) (local $mg4 v128) (local $k4 v128) (local $rstd4 v128)
    (local $k f32)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (call $stats (local.get $x) (local.get $d) (local.get $centered) (local.get $eps))
      (local.set $mean4 (f32x4.splat (global.get $mean)))
      (local.set $rstd (global.get $rstd))
      (local.set $sg (v128.const i32x4 0 0 0 0))
      (local.set $sgx (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $g (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (v128.load (i32.add (local.get $w) (local.get $j)))))
        (local.set $sg (f32x4.add (local.get $sg) (local.get $g)))
        (local.set $sgx
          (f32x4.add (local.get $sgx)
            (f32x4.mul (local.get $g) (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $mean4)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (local.set $mg4 (v128.const i32x4 0 0 0 0))
      (if (local.get $centered)
        (then (local.set $mg4 (f32x4.splat (f32.div (call $hsum (local.get $sg)) (f32.convert_i32_u (local.get $d)))))))
      (local.set $k
        (f32.div
          (f32.mul (f32.mul (f32.mul (local.get $rstd) (local.get $rstd)) (local.get $rstd)) (call $hsum (local.get $sgx)))
          (f32.convert_i32_u (local.get $d))))
      (local.set $k4 (f32x4.splat (local.get $k)))
      (local.set $rstd4 (f32x4.splat (local.get $rstd)))
      (local.set $j (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $j) (local.get $bytes)))
        (v128.store (i32.add (local.get $dx) (local.get $j))
          (f32x4.sub
            (f32x4.mul (local.get $rstd4)
              (f32x4.sub
                (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (v128.load (i32.add (local.get $w) (local.get $j))))
                (local.get $mg4)))
            (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $mean4)) (local.get $k4))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l2)))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $dy (i32.add (local.get $dy) (local.get $bytes)))
      (local.set $dx (i32.add (local.get $dx) (local.get $bytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; dw[j] = Σ over rows of dy·(x - mean)·rstd, accumulated in dw itself (zeroed first), float32.
  (func (export "normWeightGrad")
    (param $x i32) (param $dy i32) (param $dw i32) (param $rows i32) (param $d i32) (param $eps f32) (param $centered i32)
    (local $r i32) (local $j i32) (local $bytes i32) (local $mean4 v128) (local $rstd4 v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (memory.fill (local.get $dw) (i32.const 0) (local.get $bytes))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (call $stats (local.get $x) (local.get $d) (local.get $centered) (local.get $eps))
      (local.set $mean4 (f32x4.splat (global.get $mean)))
      (local.set $rstd4 (f32x4.splat (global.get $rstd)))
      (local.set $j (i32.const 0))
      (block $e (loop $l
        (br_if $e (i32.ge_u (local.get $j) (local.get $bytes)))
        (v128.store (i32.add (local.get $dw) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dw) (local.get $j)))
            (f32x4.mul
              (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j)))
                (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $j))) (local.get $mean4)))
              (local.get $rstd4))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l)))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $dy (i32.add (local.get $dy) (local.get $bytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; ---- Activations' backward (wasm-activation.ts): from x and the saved g = σ(z) ----

  ;; silu (kind 0): dx = dy·g·(1 + x(1 - g)); gelu_new (kind 1): dx = dy·(g + x·2g(1 - g)·C(1 + 3A x²)),
  ;; C = sqrt(2/π), A = 0.044715. n elements; the last n mod 4 one at a time, the same arithmetic.
  (func (export "activationGrad")
    (param $x i32) (param $g i32) (param $dy i32) (param $dx i32) (param $n i32) (param $kind i32)
    (local $o i32) (local $end4 i32) (local $bytes i32) (local $xv v128) (local $gv v128) (local $one v128)
    (local $c v128) (local $a3 v128) (local $two v128) (local $xs f32) (local $gs f32)
    (local.set $one (f32x4.splat (f32.const 1)))
    (local.set $two (f32x4.splat (f32.const 2)))
    (local.set $c (f32x4.splat (f32.const 0.7978845608028654)))
    (local.set $a3 (f32x4.splat (f32.const 0.134145)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $bytes) (i32.const -16)))
    (block $done4 (loop $l
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $o))))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $o))))
      (v128.store (i32.add (local.get $dx) (local.get $o))
        (if (result v128) (local.get $kind)
          (then
            (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o)))
              (f32x4.add (local.get $gv)
                (f32x4.mul
                  (f32x4.mul
                    (f32x4.mul (f32x4.mul (local.get $xv) (local.get $two)) (local.get $gv))
                    (f32x4.sub (local.get $one) (local.get $gv)))
                  (f32x4.mul (local.get $c)
                    (f32x4.add (local.get $one) (f32x4.mul (f32x4.mul (local.get $a3) (local.get $xv)) (local.get $xv))))))))
          (else
            (f32x4.mul
              (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o))) (local.get $gv))
              (f32x4.add (local.get $one) (f32x4.mul (local.get $xv) (f32x4.sub (local.get $one) (local.get $gv))))))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l)))
    (block $done (loop $rest
      (br_if $done (i32.ge_u (local.get $o) (local.get $bytes)))
      (local.set $xs (f32.load (i32.add (local.get $x) (local.get $o))))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $o))))
      (f32.store (i32.add (local.get $dx) (local.get $o))
        (if (result f32) (local.get $kind)
          (then
            (f32.mul (f32.load (i32.add (local.get $dy) (local.get $o)))
              (f32.add (local.get $gs)
                (f32.mul
                  (f32.mul
                    (f32.mul (f32.mul (local.get $xs) (f32.const 2)) (local.get $gs))
                    (f32.sub (f32.const 1) (local.get $gs)))
                  (f32.mul (f32.const 0.7978845608028654)
                    (f32.add (f32.const 1) (f32.mul (f32.mul (f32.const 0.134145) (local.get $xs)) (local.get $xs))))))))
          (else
            (f32.mul
              (f32.mul (f32.load (i32.add (local.get $dy) (local.get $o))) (local.get $gs))
              (f32.add (f32.const 1) (f32.mul (local.get $xs) (f32.sub (f32.const 1) (local.get $gs))))))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $rest))))

  ;; gelu_new's sigmoid argument z = 2C(x + A x³), n elements.
  (func (export "geluArgument") (param $x i32) (param $z i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $bytes i32) (local $xv v128) (local $xs f32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $bytes) (i32.const -16)))
    (block $done4 (loop $l
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $o))))
      (v128.store (i32.add (local.get $z) (local.get $o))
        (f32x4.mul (f32x4.splat (f32.const 1.5957691216057308))
          (f32x4.add (local.get $xv)
            (f32x4.mul (f32x4.mul (f32x4.mul (f32x4.splat (f32.const 0.044715)) (local.get $xv)) (local.get $xv)) (local.get $xv)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l)))
    (block $done (loop $rest
      (br_if $done (i32.ge_u (local.get $o) (local.get $bytes)))
      (local.set $xs (f32.load (i32.add (local.get $x) (local.get $o))))
      (f32.store (i32.add (local.get $z) (local.get $o))
        (f32.mul (f32.const 1.5957691216057308)
          (f32.add (local.get $xs)
            (f32.mul (f32.mul (f32.mul (f32.const 0.044715) (local.get $xs)) (local.get $xs)) (local.get $xs)))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $rest))))

  ;; ---- Gated activations (wasm-activation.ts's wasmGated): act(x)·u with act(x) = x·g, g = σ(z) saved ----

  ;; h = (x·g)·u, each product rounded to float32 as the two tf Muls it replaces round them. n elements; the
  ;; last n mod 4 one at a time.
  (func (export "gatedForward") (param $x i32) (param $g i32) (param $u i32) (param $h i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $bytes) (i32.const -16)))
    (block $done4 (loop $l
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (v128.store (i32.add (local.get $h) (local.get $o))
        (f32x4.mul
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $o))) (v128.load (i32.add (local.get $g) (local.get $o))))
          (v128.load (i32.add (local.get $u) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l)))
    (block $done (loop $rest
      (br_if $done (i32.ge_u (local.get $o) (local.get $bytes)))
      (f32.store (i32.add (local.get $h) (local.get $o))
        (f32.mul
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $o))) (f32.load (i32.add (local.get $g) (local.get $o))))
          (f32.load (i32.add (local.get $u) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $rest))))

  ;; The backward's two products, as the tf Muls' gradients round them: t = dh·u (act's gradient, which
  ;; activationGrad then turns into dx, in place) and du = dh·(x·g) (act(x) recomputed, the forward's rounding).
  (func (export "gatedGradProducts")
    (param $x i32) (param $g i32) (param $u i32) (param $dh i32) (param $t i32) (param $du i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $bytes i32) (local $d v128) (local $ds f32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $bytes) (i32.const -16)))
    (block $done4 (loop $l
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (local.set $d (v128.load (i32.add (local.get $dh) (local.get $o))))
      (v128.store (i32.add (local.get $t) (local.get $o))
        (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $u) (local.get $o)))))
      (v128.store (i32.add (local.get $du) (local.get $o))
        (f32x4.mul (local.get $d)
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $o))) (v128.load (i32.add (local.get $g) (local.get $o))))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l)))
    (block $done (loop $rest
      (br_if $done (i32.ge_u (local.get $o) (local.get $bytes)))
      (local.set $ds (f32.load (i32.add (local.get $dh) (local.get $o))))
      (f32.store (i32.add (local.get $t) (local.get $o))
        (f32.mul (local.get $ds) (f32.load (i32.add (local.get $u) (local.get $o)))))
      (f32.store (i32.add (local.get $du) (local.get $o))
        (f32.mul (local.get $ds)
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $o))) (f32.load (i32.add (local.get $g) (local.get $o))))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $rest))))

  ;; ---- Rotary embedding (wasm-rope.ts), x [B, T, H, D], half = D / 2 a multiple of 4 ----

  ;; forward:  y₁ = x₁·c₁ - x₂·s₁,  y₂ = x₂·c₂ + x₁·s₂;  transposed (the backward, on dy in x's place):
  ;; dx₁ = dy₁·c₁ + dy₂·s₂,  dx₂ = dy₂·c₂ - dy₁·s₁. cos and sin are read with byte strides per b, t and h
  ;; (0 along their broadcast axes).
  (func (export "rope")
    (param $x i32) (param $c i32) (param $s i32) (param $y i32)
    (param $B i32) (param $T i32) (param $H i32) (param $D i32)
    (param $cb i32) (param $ct i32) (param $ch i32) (param $sb i32) (param $st i32) (param $sh i32)
    (param $transposed i32)
    (local $b i32) (local $t i32) (local $h i32) (local $j i32) (local $half i32)
    (local $co i32) (local $so i32) (local $x1 v128) (local $x2 v128)
    (local.set $half (i32.shl (local.get $D) (i32.const 1))) ;; D / 2 floats = 2D bytes
    (block $eb (loop $lb
      (br_if $eb (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $t (i32.const 0))
      (block $et (loop $lt
        (br_if $et (i32.ge_u (local.get $t) (local.get $T)))
        (local.set $h (i32.const 0))
        (block $eh (loop $lh
          (br_if $eh (i32.ge_u (local.get $h) (local.get $H)))
          (local.set $co (i32.add (local.get $c)
            (i32.add (i32.mul (local.get $b) (local.get $cb))
              (i32.add (i32.mul (local.get $t) (local.get $ct)) (i32.mul (local.get $h) (local.get $ch))))))
          (local.set $so (i32.add (local.get $s)
            (i32.add (i32.mul (local.get $b) (local.get $sb))
              (i32.add (i32.mul (local.get $t) (local.get $st)) (i32.mul (local.get $h) (local.get $sh))))))
          (local.set $j (i32.const 0))
          (block $ej (loop $lj
            (br_if $ej (i32.ge_u (local.get $j) (local.get $half)))
            (local.set $x1 (v128.load (i32.add (local.get $x) (local.get $j))))
            (local.set $x2 (v128.load (i32.add (local.get $x) (i32.add (local.get $half) (local.get $j)))))
            (if (local.get $transposed)
              (then
                (v128.store (i32.add (local.get $y) (local.get $j))
                  (f32x4.add
                    (f32x4.mul (local.get $x1) (v128.load (i32.add (local.get $co) (local.get $j))))
                    (f32x4.mul (local.get $x2) (v128.load (i32.add (local.get $so) (i32.add (local.get $half) (local.get $j)))))))
                (v128.store (i32.add (local.get $y) (i32.add (local.get $half) (local.get $j)))
                  (f32x4.sub
                    (f32x4.mul (local.get $x2) (v128.load (i32.add (local.get $co) (i32.add (local.get $half) (local.get $j)))))
                    (f32x4.mul (local.get $x1) (v128.load (i32.add (local.get $so) (local.get $j)))))))
              (else
                (v128.store (i32.add (local.get $y) (local.get $j))
                  (f32x4.sub
                    (f32x4.mul (local.get $x1) (v128.load (i32.add (local.get $co) (local.get $j))))
                    (f32x4.mul (local.get $x2) (v128.load (i32.add (local.get $so) (local.get $j))))))
                (v128.store (i32.add (local.get $y) (i32.add (local.get $half) (local.get $j)))
                  (f32x4.add
                    (f32x4.mul (local.get $x2) (v128.load (i32.add (local.get $co) (i32.add (local.get $half) (local.get $j)))))
                    (f32x4.mul (local.get $x1) (v128.load (i32.add (local.get $so) (i32.add (local.get $half) (local.get $j)))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $lj)))
          (local.set $x (i32.add (local.get $x) (i32.shl (local.get $D) (i32.const 2))))
          (local.set $y (i32.add (local.get $y) (i32.shl (local.get $D) (i32.const 2))))
          (local.set $h (i32.add (local.get $h) (i32.const 1)))
          (br $lh)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $lt)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $lb))))

  ;; ---- Softmax cross-entropy (wasm-cross-entropy.ts), rows of n logits, n a multiple of 4 ----

  ;; exp(t) for t <= 0 in float32, four lanes: t = k ln 2 + q with k = round(t / ln 2) and |q| <= ln 2 / 2 (ln 2 in
  ;; two parts, so k ln 2 loses nothing), exp(q) by Cephes' expf polynomial (within about an ulp), times 2^k built
  ;; in the exponent bits. Below -87.34, where exp(t) is under float32's smallest normal, the result is 0 (against a
  ;; row's max term of 1 such a term is nothing); NaN stays NaN.
  ;; Written for the instructions V8 emits: the clamp is pmax (one maxps; f32x4.max adds a NaN fix-up, and pmax
  ;; keeps a NaN t as it is), and k is rounded by adding 1.5 · 2^23, which leaves round-to-nearest-even's integer
  ;; in the low mantissa bits (exact for |t / ln 2| < 2^22): k is that sum less 1.5 · 2^23, and 2^k's exponent
  ;; bits are the sum's bits plus 127, shifted by 23 (the shift drops the constant's own bits). The same bits as
  ;; nearest and trunc_sat, in three instructions fewer than their nine.
  (func $exp4 (param $t v128) (result v128)
    (local $tc v128) (local $kf v128) (local $q v128) (local $p v128) (local $pow v128) (local $r v128)
    (local.set $tc (f32x4.pmax (local.get $t) (f32x4.splat (f32.const -87.33654))))
    (local.set $r
      (f32x4.add
        (f32x4.mul (local.get $tc) (f32x4.splat (f32.const 1.44269504088896341)))
        (f32x4.splat (f32.const 12582912))))
    (local.set $kf (f32x4.sub (local.get $r) (f32x4.splat (f32.const 12582912))))
    (local.set $q
      (f32x4.add
        (f32x4.sub (local.get $tc) (f32x4.mul (local.get $kf) (f32x4.splat (f32.const 0.693359375))))
        (f32x4.mul (local.get $kf) (f32x4.splat (f32.const 2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $q)) (f32x4.splat (f32.const 1.3981999507e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $q)) (f32x4.splat (f32.const 8.3334519073e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $q)) (f32x4.splat (f32.const 4.1665795894e-2))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $q)) (f32x4.splat (f32.const 1.6666665459e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $q)) (f32x4.splat (f32.const 5.0000001201e-1))))
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $q) (local.get $q))) (local.get $q))
        (f32x4.splat (f32.const 1))))
    (local.set $pow
      (i32x4.shl (i32x4.add (local.get $r) (i32x4.splat (i32.const 127))) (i32.const 23)))
    (v128.andnot
      (f32x4.mul (local.get $p) (local.get $pow))
      (f32x4.lt (local.get $t) (f32x4.splat (f32.const -87.33654)))))

  ;; The row's max, left in the exported global rowMax (NaN if any logit is NaN).
  (global $rowMax (export "rowMax") (mut f32) (f32.const 0))

  ;; One row of the forward: max, then e = exp(x - max) written to e, and Σ e returned (summed in float64, lane
  ;; pairs in order, so the sum does not depend on how the loop is cut). Both passes take four vectors an
  ;; iteration: the max in four accumulators (max is exact, so their order changes nothing), and exp4's steps
  ;; written out on four independent vectors with its constants splatted once, which lets the core overlap their
  ;; dependency chains (one vector at a time waits on the polynomial's latency: 2.2 -> 1.6 ns a float measured).
  ;; The results are exp4's to the bit; rows whose length is not a multiple of 16 finish one vector at a time.
  (func $softmaxRow (export "softmaxRow") (param $x i32) (param $e i32) (param $n i32) (result f64)
    (local $o i32) (local $bytes i32) (local $wide i32) (local $max f32) (local $v v128)
    (local $m v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $s0 v128) (local $s1 v128)
    (local $t0 v128) (local $tc0 v128) (local $r0 v128) (local $kf0 v128) (local $q0 v128) (local $p0 v128) (local $v0 v128) (local $t1 v128) (local $tc1 v128) (local $r1 v128) (local $kf1 v128) (local $q1 v128) (local $p1 v128) (local $v1 v128) (local $t2 v128) (local $tc2 v128) (local $r2 v128) (local $kf2 v128) (local $q2 v128) (local $p2 v128) (local $v2 v128) (local $t3 v128) (local $tc3 v128) (local $r3 v128) (local $kf3 v128) (local $q3 v128) (local $p3 v128) (local $v3 v128)
    (local $lo v128) (local $log2e v128) (local $round v128) (local $ln2hi v128) (local $ln2lo v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $one v128) (local $bias v128)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $wide (i32.and (local.get $bytes) (i32.const -64)))
    (local.set $m (f32x4.splat (f32.const -inf)))
    (local.set $m1 (local.get $m))
    (local.set $m2 (local.get $m))
    (local.set $m3 (local.get $m))
    (block $e1 (loop $l1
      (br_if $e1 (i32.ge_u (local.get $o) (local.get $wide)))
      (local.set $m (f32x4.max (local.get $m) (v128.load (i32.add (local.get $x) (local.get $o)))))
      (local.set $m1 (f32x4.max (local.get $m1) (v128.load offset=16 (i32.add (local.get $x) (local.get $o)))))
      (local.set $m2 (f32x4.max (local.get $m2) (v128.load offset=32 (i32.add (local.get $x) (local.get $o)))))
      (local.set $m3 (f32x4.max (local.get $m3) (v128.load offset=48 (i32.add (local.get $x) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 64)))
      (br $l1)))
    (block $e1t (loop $l1t
      (br_if $e1t (i32.ge_u (local.get $o) (local.get $bytes)))
      (local.set $m (f32x4.max (local.get $m) (v128.load (i32.add (local.get $x) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l1t)))
    (local.set $m (f32x4.max (f32x4.max (local.get $m) (local.get $m1)) (f32x4.max (local.get $m2) (local.get $m3))))
    (local.set $max
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
        (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
    (global.set $rowMax (local.get $max))
    (local.set $m (f32x4.splat (local.get $max)))
    (local.set $lo (f32x4.splat (f32.const -87.33654)))
    (local.set $log2e (f32x4.splat (f32.const 1.44269504088896341)))
    (local.set $round (f32x4.splat (f32.const 12582912)))
    (local.set $ln2hi (f32x4.splat (f32.const 0.693359375)))
    (local.set $ln2lo (f32x4.splat (f32.const 2.12194440e-4)))
    (local.set $c0 (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $c1 (f32x4.splat (f32.const 1.3981999507e-3)))
    (local.set $c2 (f32x4.splat (f32.const 8.3334519073e-3)))
    (local.set $c3 (f32x4.splat (f32.const 4.1665795894e-2)))
    (local.set $c4 (f32x4.splat (f32.const 1.6666665459e-1)))
    (local.set $c5 (f32x4.splat (f32.const 5.0000001201e-1)))
    (local.set $one (f32x4.splat (f32.const 1)))
    (local.set $bias (i32x4.splat (i32.const 127)))
    (local.set $s0 (v128.const f64x2 0 0))
    (local.set $s1 (v128.const f64x2 0 0))
    (local.set $o (i32.const 0))
    (block $e2 (loop $l2
      (br_if $e2 (i32.ge_u (local.get $o) (local.get $wide)))
      (local.set $t0 (f32x4.sub (v128.load offset=0 (i32.add (local.get $x) (local.get $o))) (local.get $m)))
      (local.set $tc0 (f32x4.pmax (local.get $t0) (local.get $lo)))
      (local.set $r0 (f32x4.add (f32x4.mul (local.get $tc0) (local.get $log2e)) (local.get $round)))
      (local.set $kf0 (f32x4.sub (local.get $r0) (local.get $round)))
      (local.set $q0
        (f32x4.add (f32x4.sub (local.get $tc0) (f32x4.mul (local.get $kf0) (local.get $ln2hi))) (f32x4.mul (local.get $kf0) (local.get $ln2lo))))
      (local.set $p0 (f32x4.add (f32x4.mul (local.get $c0) (local.get $q0)) (local.get $c1)))
      (local.set $p0 (f32x4.add (f32x4.mul (local.get $p0) (local.get $q0)) (local.get $c2)))
      (local.set $p0 (f32x4.add (f32x4.mul (local.get $p0) (local.get $q0)) (local.get $c3)))
      (local.set $p0 (f32x4.add (f32x4.mul (local.get $p0) (local.get $q0)) (local.get $c4)))
      (local.set $p0 (f32x4.add (f32x4.mul (local.get $p0) (local.get $q0)) (local.get $c5)))
      (local.set $p0 (f32x4.add (f32x4.add (f32x4.mul (local.get $p0) (f32x4.mul (local.get $q0) (local.get $q0))) (local.get $q0)) (local.get $one)))
      (local.set $v0
        (v128.andnot (f32x4.mul (local.get $p0) (i32x4.shl (i32x4.add (local.get $r0) (local.get $bias)) (i32.const 23)))
          (f32x4.lt (local.get $t0) (local.get $lo))))
      (local.set $t1 (f32x4.sub (v128.load offset=16 (i32.add (local.get $x) (local.get $o))) (local.get $m)))
      (local.set $tc1 (f32x4.pmax (local.get $t1) (local.get $lo)))
      (local.set $r1 (f32x4.add (f32x4.mul (local.get $tc1) (local.get $log2e)) (local.get $round)))
      (local.set $kf1 (f32x4.sub (local.get $r1) (local.get $round)))
      (local.set $q1
        (f32x4.add (f32x4.sub (local.get $tc1) (f32x4.mul (local.get $kf1) (local.get $ln2hi))) (f32x4.mul (local.get $kf1) (local.get $ln2lo))))
      (local.set $p1 (f32x4.add (f32x4.mul (local.get $c0) (local.get $q1)) (local.get $c1)))
      (local.set $p1 (f32x4.add (f32x4.mul (local.get $p1) (local.get $q1)) (local.get $c2)))
      (local.set $p1 (f32x4.add (f32x4.mul (local.get $p1) (local.get $q1)) (local.get $c3)))
      (local.set $p1 (f32x4.add (f32x4.mul (local.get $p1) (local.get $q1)) (local.get $c4)))
      (local.set $p1 (f32x4.add (f32x4.mul (local.get $p1) (local.get $q1)) (local.get $c5)))
      (local.set $p1 (f32x4.add (f32x4.add (f32x4.mul (local.get $p1) (f32x4.mul (local.get $q1) (local.get $q1))) (local.get $q1)) (local.get $one)))
      (local.set $v1
        (v128.andnot (f32x4.mul (local.get $p1) (i32x4.shl (i32x4.add (local.get $r1) (local.get $bias)) (i32.const 23)))
          (f32x4.lt (local.get $t1) (local.get $lo))))
      (local.set $t2 (f32x4.sub (v128.load offset=32 (i32.add (local.get $x) (local.get $o))) (local.get $m)))
      (local.set $tc2 (f32x4.pmax (local.get $t2) (local.get $lo)))
      (local.set $r2 (f32x4.add (f32x4.mul (local.get $tc2) (local.get $log2e)) (local.get $round)))
      (local.set $kf2 (f32x4.sub (local.get $r2) (local.get $round)))
      (local.set $q2
        (f32x4.add (f32x4.sub (local.get $tc2) (f32x4.mul (local.get $kf2) (local.get $ln2hi))) (f32x4.mul (local.get $kf2) (local.get $ln2lo))))
      (local.set $p2 (f32x4.add (f32x4.mul (local.get $c0) (local.get $q2)) (local.get $c1)))
      (local.set $p2 (f32x4.add (f32x4.mul (local.get $p2) (local.get $q2)) (local.get $c2)))
      (local.set $p2 (f32x4.add (f32x4.mul (local.get $p2) (local.get $q2)) (local.get $c3)))
      (local.set $p2 (f32x4.add (f32x4.mul (local.get $p2) (local.get $q2)) (local.get $c4)))
      (local.set $p2 (f32x4.add (f32x4.mul (local.get $p2) (local.get $q2)) (local.get $c5)))
      (local.set $p2 (f32x4.add (f32x4.add (f32x4.mul (local.get $p2) (f32x4.mul (local.get $q2) (local.get $q2))) (local.get $q2)) (local.get $one)))
      (local.set $v2
        (v128.andnot (f32x4.mul (local.get $p2) (i32x4.shl (i32x4.add (local.get $r2) (local.get $bias)) (i32.const 23)))
          (f32x4.lt (local.get $t2) (local.get $lo))))
      (local.set $t3 (f32x4.sub (v128.load offset=48 (i32.add (local.get $x) (local.get $o))) (local.get $m)))
      (local.set $tc3 (f32x4.pmax (local.get $t3) (local.get $lo)))
      (local.set $r3 (f32x4.add (f32x4.mul (local.get $tc3) (local.get $log2e)) (local.get $round)))
      (local.set $kf3 (f32x4.sub (local.get $r3) (local.get $round)))
      (local.set $q3
        (f32x4.add (f32x4.sub (local.get $tc3) (f32x4.mul (local.get $kf3) (local.get $ln2hi))) (f32x4.mul (local.get $kf3) (local.get $ln2lo))))
      (local.set $p3 (f32x4.add (f32x4.mul (local.get $c0) (local.get $q3)) (local.get $c1)))
      (local.set $p3 (f32x4.add (f32x4.mul (local.get $p3) (local.get $q3)) (local.get $c2)))
      (local.set $p3 (f32x4.add (f32x4.mul (local.get $p3) (local.get $q3)) (local.get $c3)))
      (local.set $p3 (f32x4.add (f32x4.mul (local.get $p3) (local.get $q3)) (local.get $c4)))
      (local.set $p3 (f32x4.add (f32x4.mul (local.get $p3) (local.get $q3)) (local.get $c5)))
      (local.set $p3 (f32x4.add (f32x4.add (f32x4.mul (local.get $p3) (f32x4.mul (local.get $q3) (local.get $q3))) (local.get $q3)) (local.get $one)))
      (local.set $v3
        (v128.andnot (f32x4.mul (local.get $p3) (i32x4.shl (i32x4.add (local.get $r3) (local.get $bias)) (i32.const 23)))
          (f32x4.lt (local.get $t3) (local.get $lo))))
      (v128.store offset=0 (i32.add (local.get $e) (local.get $o)) (local.get $v0))
      (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v0))))
      (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v0) (local.get $v0)))))
      (v128.store offset=16 (i32.add (local.get $e) (local.get $o)) (local.get $v1))
      (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v1))))
      (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v1) (local.get $v1)))))
      (v128.store offset=32 (i32.add (local.get $e) (local.get $o)) (local.get $v2))
      (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v2))))
      (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v2) (local.get $v2)))))
      (v128.store offset=48 (i32.add (local.get $e) (local.get $o)) (local.get $v3))
      (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v3))))
      (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v3) (local.get $v3)))))
      (local.set $o (i32.add (local.get $o) (i32.const 64)))
      (br $l2)))
    (block $e2t (loop $l2t
      (br_if $e2t (i32.ge_u (local.get $o) (local.get $bytes)))
      (local.set $v (call $exp4 (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $o))) (local.get $m))))
      (v128.store (i32.add (local.get $e) (local.get $o)) (local.get $v))
      (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v))))
      (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l2t)))
    (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
    (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))

  ;; dst = src · s over n floats, n a multiple of 4 (the backward's e / Σ e · dy / count).
  (func $scaleRow (export "scaleRow") (param $src i32) (param $dst i32) (param $n i32) (param $s f32)
    (local $o i32) (local $bytes i32) (local $s4 v128)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $s4 (f32x4.splat (local.get $s)))
    (block $e (loop $l
      (br_if $e (i32.ge_u (local.get $o) (local.get $bytes)))
      (v128.store (i32.add (local.get $dst) (local.get $o))
        (f32x4.mul (v128.load (i32.add (local.get $src) (local.get $o))) (local.get $s4)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l))))

  ;; out = a + s b over n floats (n a multiple of 4): s = 1 a sum, s = -1 a difference (b times -1 is exact, so
  ;; each lane rounds as f32 add and sub do). The projection kernel's update (blas-projection.ts).
  (func (export "addScaled") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $s f32)
    (local $o i32) (local $bytes i32) (local $s4 v128)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $s4 (f32x4.splat (local.get $s)))
    (block $e (loop $l
      (br_if $e (i32.ge_u (local.get $o) (local.get $bytes)))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (f32x4.add (v128.load (i32.add (local.get $a) (local.get $o)))
          (f32x4.mul (v128.load (i32.add (local.get $b) (local.get $o))) (local.get $s4))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $l))))
;; Attention's causal softmax on rows t0 .. t1 - 1 of one T x T block of scores (T a multiple of 4), in place,
  ;; as blas-attention.ts's per-row loop: row t's prefix rounded up to the lanes, n = min(T, 4 ceil((t + 1) / 4)),
  ;; with the keys after t in it set to MASKED; its softmax (softmaxRow, then scaleRow by 1 / Σ rounded to f32);
  ;; and zeros from n on. One call per block instead of one per row.
  (func (export "causalSoftmax") (param $p i32) (param $T i32) (param $t0 i32) (param $t1 i32)
    (local $t i32) (local $row i32) (local $n i32) (local $j i32) (local $sum f64)
    (local.set $t (local.get $t0))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $t) (local.get $t1)))
      (local.set $row (i32.add (local.get $p) (i32.shl (i32.mul (local.get $t) (local.get $T)) (i32.const 2))))
      (local.set $n (i32.and (i32.add (local.get $t) (i32.const 4)) (i32.const -4)))
      (if (i32.gt_u (local.get $n) (local.get $T)) (then (local.set $n (local.get $T))))
      (local.set $j (i32.add (local.get $t) (i32.const 1)))
      (block $e (loop $l
        (br_if $e (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))) (f32.const -1e9))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l)))
      (local.set $sum (call $softmaxRow (local.get $row) (local.get $row) (local.get $n)))
      (call $scaleRow (local.get $row) (local.get $row) (local.get $n)
        (f32.demote_f64 (f64.div (f64.const 1) (local.get $sum))))
      (memory.fill (i32.add (local.get $row) (i32.shl (local.get $n) (i32.const 2))) (i32.const 0)
        (i32.shl (i32.sub (local.get $T) (local.get $n)) (i32.const 2)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $rows))))

  ;; Attention's softmax backward on rows t0 .. t1 - 1 of one T x T block (T a multiple of 4), in place in ds (which
  ;; holds dP): ds = p (ds - Σ_j p ds) on each row's first `end` keys, zeros after. end = t + 1 (the causal prefix,
  ;; where p is nonzero) or, with full = 1, T (rows that had every key masked). The dot is summed in float64 over
  ;; lanes (p is 0 on the lanes past end), each output computed in float64 and rounded once.
  (func (export "causalSoftmaxGrad") (param $p i32) (param $ds i32) (param $T i32) (param $t0 i32) (param $t1 i32)
    (param $full i32)
    (local $t i32) (local $rowP i32) (local $rowD i32) (local $end i32) (local $n i32) (local $o i32)
    (local $bytes i32) (local $a0 v128) (local $a1 v128) (local $pv v128) (local $dv v128) (local $dot v128)
    (local $j i32)
    (local.set $t (local.get $t0))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $t) (local.get $t1)))
      (local.set $o (i32.shl (i32.mul (local.get $t) (local.get $T)) (i32.const 2)))
      (local.set $rowP (i32.add (local.get $p) (local.get $o)))
      (local.set $rowD (i32.add (local.get $ds) (local.get $o)))
      (local.set $end (select (local.get $T) (i32.add (local.get $t) (i32.const 1)) (local.get $full)))
      (local.set $n (i32.and (i32.add (local.get $end) (i32.const 3)) (i32.const -4)))
      (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
      (local.set $a0 (v128.const f64x2 0 0))
      (local.set $a1 (v128.const f64x2 0 0))
      (local.set $o (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $o) (local.get $bytes)))
        (local.set $pv (v128.load (i32.add (local.get $rowP) (local.get $o))))
        (local.set $dv (v128.load (i32.add (local.get $rowD) (local.get $o))))
        (local.set $a0 (f64x2.add (local.get $a0)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $pv)) (f64x2.promote_low_f32x4 (local.get $dv)))))
        (local.set $a1 (f64x2.add (local.get $a1)
          (f64x2.mul
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $pv) (local.get $pv)))
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $dv) (local.get $dv))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l1)))
      (local.set $a0 (f64x2.add (local.get $a0) (local.get $a1)))
      (local.set $dot (f64x2.splat
        (f64.add (f64x2.extract_lane 0 (local.get $a0)) (f64x2.extract_lane 1 (local.get $a0)))))
      (local.set $o (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $o) (local.get $bytes)))
        (local.set $pv (v128.load (i32.add (local.get $rowP) (local.get $o))))
        (local.set $dv (v128.load (i32.add (local.get $rowD) (local.get $o))))
        (local.set $a0 (f64x2.mul (f64x2.promote_low_f32x4 (local.get $pv))
          (f64x2.sub (f64x2.promote_low_f32x4 (local.get $dv)) (local.get $dot))))
        (local.set $a1 (f64x2.mul
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $pv) (local.get $pv)))
          (f64x2.sub
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $dv) (local.get $dv)))
            (local.get $dot))))
        (v128.store (i32.add (local.get $rowD) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $a0)) (f32x4.demote_f64x2_zero (local.get $a1))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l2)))
      ;; The keys past end: exactly 0 (the lanes above gave p · x = ±0 there).
      (memory.fill (i32.add (local.get $rowD) (i32.shl (local.get $end) (i32.const 2))) (i32.const 0)
        (i32.shl (i32.sub (local.get $T) (local.get $end)) (i32.const 2)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $rows))))
;; The cross-entropy's forward on rows r0 .. r1 - 1 of [rows, n] logits x (n a multiple of 4): for each row whose
  ;; target (int32 at t) lies in [0, n), e = exp(x - max) written out (softmaxRow), then Σ e and the max as float64
  ;; at stats + 16 r and stats + 16 r + 8. The log and the loss stay in TypeScript (wasm has no log). Results go to
  ;; memory rather than rowMax, so calls on other threads may run at once.
  (func (export "crossEntropyRows") (param $x i32) (param $e i32) (param $t i32) (param $stats i32) (param $n i32)
    (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $target i32) (local $at i32) (local $s i32)
    (local.set $r (local.get $r0))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $r) (local.get $r1)))
      (local.set $target (i32.load (i32.add (local.get $t) (i32.shl (local.get $r) (i32.const 2)))))
      (if (i32.and (i32.ge_s (local.get $target) (i32.const 0)) (i32.lt_s (local.get $target) (local.get $n)))
        (then
          (local.set $at (i32.shl (i32.mul (local.get $r) (local.get $n)) (i32.const 2)))
          (local.set $s (i32.add (local.get $stats) (i32.shl (local.get $r) (i32.const 4))))
          (f64.store (local.get $s)
            (call $softmaxRow (i32.add (local.get $x) (local.get $at)) (i32.add (local.get $e) (local.get $at))
              (local.get $n)))
          (f64.store offset=8 (local.get $s) (f64.promote_f32 (global.get $rowMax)))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))

  ;; The cross-entropy's backward on rows r0 .. r1 - 1 (n a multiple of 4), as wasm-cross-entropy.ts's loop: a row
  ;; with a target in [0, n) gets e · (g / Σ e) (the scale rounded to float32, as scaleRow takes it) and, at the
  ;; target, (e / Σ e - 1) g in float64 rounded once; a row without one gets zeros. sums: float32 per row.
  (func (export "crossEntropyGradRows") (param $e i32) (param $t i32) (param $sums i32) (param $out i32)
    (param $g f64) (param $n i32) (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $target i32) (local $at i32) (local $sum f64) (local $j i32)
    (local.set $r (local.get $r0))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $r) (local.get $r1)))
      (local.set $target (i32.load (i32.add (local.get $t) (i32.shl (local.get $r) (i32.const 2)))))
      (local.set $at (i32.shl (i32.mul (local.get $r) (local.get $n)) (i32.const 2)))
      (if (i32.and (i32.ge_s (local.get $target) (i32.const 0)) (i32.lt_s (local.get $target) (local.get $n)))
        (then
          (local.set $sum
            (f64.promote_f32 (f32.load (i32.add (local.get $sums) (i32.shl (local.get $r) (i32.const 2))))))
          (call $scaleRow (i32.add (local.get $e) (local.get $at)) (i32.add (local.get $out) (local.get $at))
            (local.get $n) (f32.demote_f64 (f64.div (local.get $g) (local.get $sum))))
          (local.set $j (i32.add (local.get $at) (i32.shl (local.get $target) (i32.const 2))))
          (f32.store (i32.add (local.get $out) (local.get $j))
            (f32.demote_f64
              (f64.mul
                (f64.sub
                  (f64.div (f64.promote_f32 (f32.load (i32.add (local.get $e) (local.get $j)))) (local.get $sum))
                  (f64.const 1))
                (local.get $g)))))
        (else
          (memory.fill (i32.add (local.get $out) (local.get $at)) (i32.const 0) (i32.shl (local.get $n) (i32.const 2)))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))
)
