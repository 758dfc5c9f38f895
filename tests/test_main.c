/* test_main.c - the test runner for timesformer.h: one translation unit that compiles the
   implementation (so the tests can reach the tsf__ internals) and every test file.

   Build:  cc -std=c99 -O2 -I.. test_main.c -o test_main -lm     [-fopenmp] [-DTSF_NO_SIMD]
   Run:    ./test_main            all tests
           ./test_main grad       only the tests whose name contains "grad" */
#include "tsf_test.h" /* first: it asks for POSIX clock_gettime */

#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

#include <float.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- helpers shared by the test files ----------------------------------------------------- */

/* n floats, normal(0, scale), from a seeded generator. */
static float *rnd_normal(tsf_rng *rng, size_t n, float scale) {
    float *x = tsft_alloc(n);
    size_t i;
    for (i = 0; i < n; i++) x[i] = scale * tsf_rng_normal(rng);
    return x;
}

/* n floats, uniform in [lo, hi). */
static float *rnd_uniform(tsf_rng *rng, size_t n, float lo, float hi) {
    float *x = tsft_alloc(n);
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * tsf_rng_uniform(rng);
    return x;
}

static float *fcopy(const float *src, size_t n) {
    float *x = tsft_alloc(n);
    memcpy(x, src, n * sizeof *x);
    return x;
}

/* n floats all equal to v (NaN marks "must be overwritten, never read"). */
static float *ffill(size_t n, float v) {
    float *x = tsft_alloc(n);
    size_t i;
    for (i = 0; i < n; i++) x[i] = v;
    return x;
}

/* want[i] = base[i] + k * delta[i]: the expected value of a gradient buffer that started at
   base and received k accumulations of delta. base may be NULL (zero). */
static double *expect_acc(const float *base, const double *delta, double k, size_t n) {
    double *w = tsft_allocd(n);
    size_t i;
    for (i = 0; i < n; i++) w[i] = (base ? (double)base[i] : 0.0) + k * delta[i];
    return w;
}

/* 1 when the n floats are bit-identical. */
static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

#include "test_grad.c"
#include "test_matmul.c"
#include "test_model.c"
#include "test_ops.c"

/* after test_model.c: these use its helpers */
#include "test_hostile.c"
#include "test_torch.c"
#include "test_train.c"
/* after test_train.c: it uses tt_cfg and tt_perturb */
#include "test_parallel.c"
#include "test_scratch.c"

static const tsft_case tests[] = {
    /* basics */
    {"basics.version", test_version},
    {"basics.status_string", test_status_string},
    {"basics.rng_determinism", test_rng_determinism},
    {"basics.rng_uniform", test_rng_uniform},
    {"basics.rng_normal", test_rng_normal},
    /* kernels against naive double references (test_ops.c) */
    {"ops.linear_forward", test_linear_forward},
    {"ops.linear_backward", test_linear_backward},
    {"ops.linear_backward_null", test_linear_backward_null},
    {"ops.layernorm_known_values", test_layernorm_known_values},
    {"ops.layernorm_forward", test_layernorm_forward},
    {"ops.layernorm_backward", test_layernorm_backward},
    {"ops.gelu_known_values", test_gelu_known_values},
    {"ops.gelu", test_gelu},
    {"ops.linear_gelu", test_linear_gelu},
    {"ops.softmax", test_softmax},
    {"ops.softmax_stable", test_softmax_stable},
    {"ops.attention", test_attention},
    {"ops.attention_uniform", test_attention_uniform},
    {"ops.attention_fused", test_attention_fused},
    {"ops.residual", test_residual},
    {"ops.mean", test_mean},
    {"ops.crossentropy", test_crossentropy},
    {"ops.crossentropy_stable", test_crossentropy_stable},
    {"ops.patch_embed", test_patch_embed},
    {"ops.patch_embed_no_dinp", test_patch_embed_no_dinp},
    /* finite-difference gradients (test_grad.c) */
    {"grad.linear", test_grad_linear},
    {"grad.layernorm", test_grad_layernorm},
    {"grad.gelu", test_grad_gelu},
    {"grad.softmax", test_grad_softmax},
    {"grad.attention", test_grad_attention},
    {"grad.residual", test_grad_residual},
    {"grad.mean", test_grad_mean},
    {"grad.crossentropy", test_grad_crossentropy},
    {"grad.patch_embed", test_grad_patch_embed},
    /* matrix products (test_matmul.c) */
    {"matmul.nt_nn_tn", test_matmul_simple},
    {"matmul.general", test_matmul_general},
    {"matmul.k_zero", test_matmul_k_zero},
    {"matmul.empty", test_matmul_empty},
    {"matmul.batched", test_matmul_batched},
    {"matmul.work", test_matmul_work},
    {"matmul.small_batch", test_matmul_small_batch},
    {"matmul.packed_b", test_matmul_packed_b},
    {"matmul.simd_vs_portable", test_matmul_simd_vs_portable},
    /* the model and its weight files (test_model.c) */
    {"model.golden_space_base", test_model_golden_space_base},
    {"model.golden_joint_base", test_model_golden_joint_base},
    {"model.golden_divided_base", test_model_golden_divided_base},
    {"model.golden_space_resized", test_model_golden_space_resized},
    {"model.golden_joint_resized", test_model_golden_joint_resized},
    {"model.golden_divided_resized", test_model_golden_divided_resized},
    {"model.golden_divided_samecount", test_model_golden_divided_samecount},
    {"model.golden_local_global_base", test_model_golden_local_global_base},
    {"model.golden_local_global_resized", test_model_golden_local_global_resized},
    {"model.golden_local_global_odd", test_model_golden_local_global_odd},
    {"model.golden_axial_base", test_model_golden_axial_base},
    {"model.golden_axial_resized", test_model_golden_axial_resized},
    {"model.golden_axial_odd", test_model_golden_axial_odd},
    {"model.golden_space_pos_space", test_model_golden_space_pos_space},
    {"model.golden_space_pos_none", test_model_golden_space_pos_none},
    {"model.golden_joint_pos_space", test_model_golden_joint_pos_space},
    {"model.golden_joint_pos_none", test_model_golden_joint_pos_none},
    {"model.golden_divided_pos_space", test_model_golden_divided_pos_space},
    {"model.golden_divided_pos_none", test_model_golden_divided_pos_none},
    {"model.golden_local_global_pos_space", test_model_golden_local_global_pos_space},
    {"model.golden_local_global_pos_none", test_model_golden_local_global_pos_none},
    {"model.golden_axial_pos_space", test_model_golden_axial_pos_space},
    {"model.golden_axial_pos_none", test_model_golden_axial_pos_none},
    {"model.forward_u8", test_model_forward_u8},
    {"model.forward_args", test_model_forward_args},
    {"model.num_params", test_model_num_params},
    {"model.flops", test_model_flops},
    {"model.bytes", test_model_bytes},
    {"model.bytes_bad", test_model_bytes_bad},
    {"model.init_values", test_model_init_values},
    {"model.init_seed", test_model_init_seed},
    {"model.tensors", test_model_tensors},
    {"model.attention_names", test_model_attention_names},
    {"model.config_resolve", test_model_config_resolve},
    {"weights.save_load", test_weights_save_load},
    {"weights.save_config", test_weights_save_config},
    {"weights.labels_ascii", test_weights_labels_ascii},
    {"weights.load_memory", test_weights_load_memory},
    {"weights.dtypes", test_weights_dtypes},
    {"weights.original_names", test_weights_original_names},
    {"weights.hf_folder", test_weights_hf_folder},
    {"weights.config_load", test_weights_config_load},
    {"weights.config_from_json", test_weights_config_from_json},
    {"weights.hostile_framing", test_weights_hostile_framing},
    {"weights.hostile_entries", test_weights_hostile_entries},
    {"weights.hostile_names", test_weights_hostile_names},
    {"weights.hostile_json_strict", test_weights_hostile_json_strict},
    {"weights.hostile_files", test_weights_hostile_files},
    {"weights.fuzz", test_weights_fuzz},
    {"weights.labels_utf8", test_weights_labels_utf8},
    {"weights.hostile_metadata", test_weights_hostile_metadata},
    {"weights.hostile_metadata_short", test_weights_hostile_metadata_short},
    /* files and configs that lie (test_hostile.c) */
    {"hostile.nonfinite_weights", test_hostile_nonfinite_weights},
    {"hostile.coverage", test_hostile_coverage},
    {"hostile.config_values", test_hostile_config_values},
    {"hostile.checkpoint_state", test_hostile_checkpoint_state},
    {"hostile.labels", test_hostile_labels},
    {"hostile.not_files", test_hostile_not_files},
    {"hostile.save_target", test_hostile_save_target},
    {"hostile.clip_fifo", test_hostile_clip_fifo},
    {"hostile.mlp_ratio", test_hostile_mlp_ratio},
    /* PyTorch checkpoints and Hugging Face folders (test_torch.c) */
    {"torch.hf_folder", test_torch_hf_folder},
    {"torch.param_table", test_torch_param_table},
    /* data-parallel training (test_parallel.c) */
    {"parallel.grad_hook", test_parallel_grad_hook},
    {"parallel.overlap", test_parallel_overlap},
    {"parallel.two_halves", test_parallel_two_halves},
    {"parallel.shard", test_parallel_shard},
    {"init.scratch", test_scratch_init},
    {"torch.scheme_counts", test_torch_scheme_counts},
    {"torch.layouts", test_torch_layouts},
    {"torch.half_types", test_torch_half_types},
    {"torch.sharded", test_torch_sharded},
    {"torch.infer_config", test_torch_infer_config},
    {"torch.refused", test_torch_refused},
    {"torch.damaged", test_torch_damaged},
    {"torch.config_fields", test_torch_config_fields},
    {"torch.preprocessor", test_torch_preprocessor},
    {"torch.weights_api", test_torch_weights_api},
    /* training: golden gradients and SGD, finite differences, optimiser, checkpoints
       (test_train.c) */
    {"train.golden_grads_space_base", test_train_golden_grads_space_base},
    {"train.golden_grads_joint_base", test_train_golden_grads_joint_base},
    {"train.golden_grads_divided_base", test_train_golden_grads_divided_base},
    {"train.golden_grads_space_resized", test_train_golden_grads_space_resized},
    {"train.golden_grads_joint_resized", test_train_golden_grads_joint_resized},
    {"train.golden_grads_divided_resized", test_train_golden_grads_divided_resized},
    {"train.golden_grads_divided_samecount", test_train_golden_grads_divided_samecount},
    {"train.golden_grads_local_global_base", test_train_golden_grads_local_global_base},
    {"train.golden_grads_local_global_resized", test_train_golden_grads_local_global_resized},
    {"train.golden_grads_local_global_odd", test_train_golden_grads_local_global_odd},
    {"train.golden_grads_axial_base", test_train_golden_grads_axial_base},
    {"train.golden_grads_axial_resized", test_train_golden_grads_axial_resized},
    {"train.golden_grads_axial_odd", test_train_golden_grads_axial_odd},
    {"train.golden_grads_space_pos_space", test_train_golden_grads_space_pos_space},
    {"train.golden_grads_space_pos_none", test_train_golden_grads_space_pos_none},
    {"train.golden_grads_joint_pos_space", test_train_golden_grads_joint_pos_space},
    {"train.golden_grads_joint_pos_none", test_train_golden_grads_joint_pos_none},
    {"train.golden_grads_divided_pos_space", test_train_golden_grads_divided_pos_space},
    {"train.golden_grads_divided_pos_none", test_train_golden_grads_divided_pos_none},
    {"train.golden_grads_local_global_pos_space", test_train_golden_grads_local_global_pos_space},
    {"train.golden_grads_local_global_pos_none", test_train_golden_grads_local_global_pos_none},
    {"train.golden_grads_axial_pos_space", test_train_golden_grads_axial_pos_space},
    {"train.golden_grads_axial_pos_none", test_train_golden_grads_axial_pos_none},
    {"train.golden_sgd_space", test_train_golden_sgd_space},
    {"train.golden_sgd_joint", test_train_golden_sgd_joint},
    {"train.golden_sgd_divided", test_train_golden_sgd_divided},
    {"train.golden_sgd_local_global", test_train_golden_sgd_local_global},
    {"train.golden_sgd_axial", test_train_golden_sgd_axial},
    {"train.fd_space", test_train_fd_space},
    {"train.fd_joint", test_train_fd_joint},
    {"train.fd_divided", test_train_fd_divided},
    {"train.drop_path", test_train_drop_path},
    {"train.drop_path_ramp", test_train_drop_path_ramp},
    {"train.dropout", test_train_dropout},
    {"train.original_init_temporal", test_train_original_init_temporal},
    {"train.sgd_momentum", test_train_sgd_momentum},
    {"train.sgd_weight_decay", test_train_sgd_weight_decay},
    {"train.sgd_accum_clip", test_train_sgd_accum_clip},
    {"train.accum_equivalence", test_train_accum_equivalence},
    {"train.recompute", test_train_recompute},
    {"train.head_rows", test_train_head_rows},
    {"train.fused_sgd", test_train_fused_sgd},
    {"train.packed_weights", test_train_packed_weights},
    {"train.lr_schedules", test_train_lr_schedules},
    {"train.checkpoint_resume", test_train_checkpoint_resume},
    {"train.checkpoint_model_file", test_train_checkpoint_model_file},
    {"train.checkpoint_atomic", test_train_checkpoint_atomic},
    {"train.nonfinite", test_train_nonfinite},
    {"train.args", test_train_args},
    {"train.overfit_space", test_train_overfit_space},
    {"train.overfit_joint", test_train_overfit_joint},
    {"train.overfit_divided", test_train_overfit_divided},
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    {"train.threads", test_train_threads},
#endif
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    /* bit-identical results for any thread count (only when the library uses OpenMP) */
    {"threads.matmul", test_threads_matmul},
    {"threads.matmul_nested", test_threads_matmul_nested},
    {"threads.kernels", test_threads_kernels},
#endif
};

int main(int argc, char **argv) { return tsft_main(tests, TSFT_COUNT(tests), argc, argv); }
