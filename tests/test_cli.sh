#!/usr/bin/env bash
# End-to-end tests of build/tsf: `tsf info` counts for the paper's models (all five schemes,
# the pos_embed ablation), `tsf export`'s refusal of what Hugging Face cannot run, `tsf parity`
# on every golden folder, and its failure on a corrupted one. Usage: tests/test_cli.sh TSF_BINARY
# Prints [PASS]/[FAIL] lines and "N passed, N failed"; exit status 1 on any failure.
set -u
TSF=${1:-build/tsf}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1"; FAILED=$((FAILED + 1)); }

# ViT-B/16, 8 x 224^2, 174 classes (SSv2 head): paper Table 1 and docs/model.md section 7.
vitb() { # attention classes
    printf '{"attention_type": "%s", "hidden_size": 768, "image_size": 224, "intermediate_size": 3072, "layer_norm_eps": 1e-06, "num_attention_heads": 12, "num_channels": 3, "num_frames": 8, "num_hidden_layers": 12, "patch_size": 16, "qkv_bias": true, "num_labels": %s}\n' "$1" "$2"
}
for row in "space_only 85,932,462 140.5" "joint_space_time 85,938,606 179.6" "divided_space_time 121,392,558 195.8"; do
    set -- $row
    vitb "$1" 174 >"$TMP/$1.json"
    out=$("$TSF" info "$TMP/$1.json" 2>&1)
    if echo "$out" | grep -q "^parameters   $2\$" && echo "$out" | grep -q "^GFLOPs       $3 per clip"; then
        pass "info: ViT-B/16 $1, 174 classes: $2 parameters, $3 GFLOPs"
    else
        fail "info: ViT-B/16 $1: want $2 parameters and $3 GFLOPs, got: $(echo "$out" | grep -E 'parameters|GFLOPs' | tr '\n' ' ')"
    fi
done

# the paper's two unreleased schemes and the pos_embed ablation (docs/model.md sections 7 and 8):
# counts from the reference's `count` (ViT-B/16, 8 x 224^2; 206.928 and 249.412 GFLOPs a view)
vitb_pos() { # attention classes pos_embed
    vitb "$1" "$2" | sed "s/}\$/, \"pos_embed\": \"$3\"}/"
}
for row in "sparse_local_global 174 space_time 121,392,558 206.9" "axial 174 space_time 156,846,510 249.4" \
    "sparse_local_global 400 space_time 121,566,352 206.9" "axial 400 space_time 157,020,304 249.4" \
    "divided_space_time 174 space 121,386,414 195.8" "divided_space_time 174 none 121,235,118 195.8" \
    "sparse_local_global 174 space 121,386,414 206.9" "axial 174 none 156,689,070 249.4" \
    "space_only 174 none 85,781,166 140.5" "joint_space_time 174 space 85,932,462 179.6"; do
    set -- $row
    vitb_pos "$1" "$2" "$3" >"$TMP/$1_$2_$3.json"
    out=$("$TSF" info "$TMP/$1_$2_$3.json" 2>&1)
    if echo "$out" | grep -q "^attention    $1\$" && echo "$out" | grep -q "^pos_embed    $3 (" &&
        echo "$out" | grep -q "^parameters   $4\$" && echo "$out" | grep -q "^GFLOPs       $5 per clip"; then
        pass "info: ViT-B/16 $1, pos_embed $3, $2 classes: $4 parameters, $5 GFLOPs"
    else
        fail "info: ViT-B/16 $1, pos_embed $3, $2 classes: want $4 parameters and $5 GFLOPs, got: $(echo "$out" | grep -E 'attention|pos_embed|parameters|GFLOPs' | tr '\n' ' ')"
    fi
done

# info's training memory: every block's activations > recompute > recompute + fused SGD
out=$("$TSF" info "$TMP/divided_space_time.json" 2>&1 | tr '\n' ' ')
mem=$(echo "$out" | sed -E 's/.*training, batch 1: ([0-9.]+) MB.*recomputed\): ([0-9.]+) MB.*no whole gradient kept\): ([0-9.]+) MB.*/\1 \2 \3/')
if echo "$mem" | awk '{ exit !(NF == 3 && $1 > $2 && $2 > $3 && $2 - $3 > 400) }'; then
    pass "info: ViT-B divided training memory, default > recompute > + fused SGD (MB: $mem)"
else
    fail "info: training memory lines: $out"
fi

# info on a weights file and on a Hugging Face-style folder
if "$TSF" info tests/golden/joint_base/weights.safetensors | grep -q "^attention    joint_space_time"; then
    pass "info: safetensors file"
else
    fail "info: safetensors file"
fi
if "$TSF" info "$TMP/missing.safetensors" >/dev/null 2>&1; then
    fail "info: a missing file must fail"
else
    pass "info: a missing file fails"
fi

# export: Hugging Face's TimeSformer has neither the two unreleased schemes nor the pos_embed
# ablation; such a model is refused by name and nothing is written
for row in "local_global_base sparse_local_global" "axial_base axial" "divided_pos_space pos_embed space" "joint_pos_none pos_embed none"; do
    set -- $row
    rm -rf "$TMP/hf_$1"
    "$TSF" export "tests/golden/$1/weights.safetensors" "$TMP/hf_$1" >"$TMP/export.log" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q "export: .*$1/weights.safetensors has ${3:+$2 }${3:-attention_type $2}, and Hugging Face" "$TMP/export.log" &&
        [ ! -e "$TMP/hf_$1" ]; then
        pass "export: $1 refused by name ($2${3:+ $3}), nothing written"
    else
        fail "export: $1: exit $rc, folder $(ls -d "$TMP/hf_$1" 2>/dev/null || echo absent): $(head -c 400 "$TMP/export.log")"
    fi
done

# parity on every golden folder
for d in tests/golden/*/; do
    d=${d%/}
    rm -f "$TMP/out/logits.bin"
    if out=$("$TSF" parity "$d" --out "$TMP/out" 2>&1) && echo "$out" | grep -q "^parity: OK"; then
        if [ -f "$TMP/out/logits.bin" ] &&
            [ "$(stat -c %s "$TMP/out/logits.bin")" -eq "$(stat -c %s "$d/logits.bin")" ]; then
            pass "parity: $(basename "$d")"
        else
            fail "parity: $(basename "$d"): logits.bin missing or of the wrong size"
        fi
    else
        fail "parity: $(basename "$d"): $out"
    fi
done

# parity also checks gradients, the input gradient and (where meta.json asks) SGD steps
out=$("$TSF" parity tests/golden/divided_base --out "$TMP/out3" 2>&1)
for what in "gradients" "input gradient" "weights after SGD"; do
    if echo "$out" | grep -E -q "^  $what .*: ok\$"; then pass "parity: $what checked"; else fail "parity: $what not checked: $out"; fi
done
if [ -f "$TMP/out3/grads.safetensors" ] && [ -f "$TMP/out3/input_grad.bin" ] && [ -f "$TMP/out3/weights_sgd.safetensors" ]; then
    pass "parity: writes grads.safetensors, input_grad.bin, weights_sgd.safetensors"
else
    fail "parity: missing output files in $TMP/out3"
fi
cp -r tests/golden/divided_base "$TMP/badgrad"
printf '\x00\x00\x80\x3f' | dd of="$TMP/badgrad/input_grad.bin" bs=1 seek=0 conv=notrunc 2>/dev/null
if "$TSF" parity "$TMP/badgrad" --out "$TMP/out4" >/dev/null 2>&1; then
    fail "parity: a wrong input gradient must fail"
else
    pass "parity: a wrong input gradient fails"
fi

# a golden folder whose expected logits are wrong must fail
cp -r tests/golden/divided_base "$TMP/bad"
printf '\x00\x00\x80\x3f' | dd of="$TMP/bad/logits.bin" bs=1 seek=0 conv=notrunc 2>/dev/null
if "$TSF" parity "$TMP/bad" --out "$TMP/out2" >/dev/null 2>&1; then
    fail "parity: a wrong logit must fail"
else
    pass "parity: a wrong logit fails"
fi

# parity on hostile meta.json files: a clean refusal (exit 1, the reason), no overflow and no
# leak (the cli-asan suite runs this under ASan and UBSan)
meta=tests/golden/divided_base/meta.json
parity_refuses() { # NAME SED-EXPRESSION WANT
    rm -rf "$TMP/hm" && cp -r tests/golden/divided_base "$TMP/hm"
    sed -E "$2" "$meta" | tr -d '\n' >"$TMP/hm/meta.json"
    "$TSF" parity "$TMP/hm" --out "$TMP/hm_out" >"$TMP/hm.log" 2>&1
    local rc=$?
    if [ $rc -eq 1 ] && grep -q "$3" "$TMP/hm.log" && ! grep -q -E "runtime error|LeakSanitizer|AddressSanitizer" "$TMP/hm.log"; then
        pass "parity: $1 refused"
    else
        fail "parity: $1: exit $rc: $(head -5 "$TMP/hm.log")"
    fi
}
parity_refuses "an input_shape of 6 sizes" 's/"input_shape": \[/"input_shape": [1, /' "no valid input_shape"
parity_refuses "input_shape entries of 2^20 (a product beyond 2^30)" \
    ':a;N;$!ba;s/"input_shape": \[[^]]*\]/"input_shape": [1048576, 1048576, 1048576, 1048576, 1048576]/' "no valid input_shape"
parity_refuses "nesterov \"yes\"" 's/"nesterov": true/"nesterov": "yes"/' "nesterov must be true or false"
rm -rf "$TMP/hw" && cp -r tests/golden/divided_base "$TMP/hw" && rm "$TMP/hw/weights.safetensors"
"$TSF" parity "$TMP/hw" --out "$TMP/hw_out" >"$TMP/hw.log" 2>&1
if [ $? -eq 1 ] && grep -q "weights.safetensors: cannot open: No such file" "$TMP/hw.log" && ! grep -q Sanitizer "$TMP/hw.log"; then
    pass "parity: missing weights: the file and the reason named, nothing leaked"
else
    fail "parity: missing weights: $(head -5 "$TMP/hw.log")"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
