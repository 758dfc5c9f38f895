/* timesformer.h - v0.1.0 - TimeSformer video transformer in one C file

   TimeSformer (Bertasius, Wang, Torresani, ICML 2021, "Is Space-Time Attention All You
   Need for Video Understanding?"): forward pass, hand-written backward pass, SGD.
   Dependencies: libc and libm. OpenMP is optional: pragmas, and omp_get_num_threads().

   Do this:
       #define TIMESFORMER_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it plainly, without the define.

HOW TO READ THIS FILE

   This comment is the manual, the API follows it, then the implementation, which reads
   top to bottom in this order (search for the banners in capitals). docs/model.md is the
   account of the model: token layout, the named tensors (X, z0, U, Q, V) and the row
   counts (R, Rt, Rs, RA, SA, SL, SM, LS), parameters, FLOPs, numerics.
   1. KERNELS: linear, layernorm, gelu, softmax, attention (plain, then fused), residual,
      mean, cross-entropy, patch embedding, each _forward beside its _backward.
   2. MODEL: "the parameter table" (every parameter tensor, one row each), "the size
      tables", then "token grouping": the row order and the gathers that are all the
      difference between space_only, joint and divided attention.
   3. "forward" (tsf__block_forward, tsf__forward); then TRAINING: "backward", the same
      steps from the bottom up (tsf__block_backward), "SGD", "learning-rate schedules".
   4. MODEL MEMORY (the size of every buffer, their layout, a model made and freed), I/O
      (JSON, tensor names, safetensors, torch.save) and CLIPS AND DATASETS.
   5. MATMUL (packing, SIMD micro-kernels, threading) and NUMERIC MACHINERY (exp, erf):
      what every kernel calls, last.

QUICK START

       #define TIMESFORMER_IMPLEMENTATION
       #include "timesformer.h"

       tsf_model m;
       tsf_error err;
       float logits[400];
       // a Hugging Face folder as downloaded (config.json, preprocessor_config.json and
       // pytorch_model.bin or model.safetensors), a .safetensors file, or a PyTorch
       // checkpoint (.bin, .pth, the original code's .pyth): no Python needed
       if (tsf_model_load(&m, "timesformer-base-finetuned-k400", 1, &err) != TSF_OK)
           fprintf(stderr, "%s\n", err.msg);
       // rgb // (B=1, T=8, H=224, W=224, 3) bytes: normalised with the model's mean/std
       // (frames resized to the model's cfg.short_side, then its centre cfg.crop_size square)
       tsf_model_forward_u8(&m, rgb, 1, 8, 224, 224, logits);
       printf("%s\n", tsf_model_label(&m, argmax(logits)));
       tsf_model_free(&m);

       // a new model: zero fields of tsf_config mean laptop-sized defaults
       tsf_config cfg = {0};
       cfg.attention = TSF_ATTN_DIVIDED, cfg.classes = 4;
       tsf_model_init(&m, &cfg, 8, 42);    // room for batches of 8 clips; seed 42
       // x // (B, C, T, H, W) normalised floats; defaults: C 3, T 8, H = W = 112
       tsf_model_forward(&m, x, 8, 8, 112, 112, logits);

       // the kernels on their own: y // (M, OUT) = x // (M, IN) . W // (OUT, IN) ^T + b
       tsf_linear_forward(y, x, W, b, M, IN, OUT);
       tsf_linear_backward(dx, dW, db, dy, x, W, M, IN, OUT);   // dx, dW, db are +=

COMPILE-TIME OPTIONS (define before including the implementation)

   TIMESFORMER_IMPLEMENTATION  emit the implementation (exactly one translation unit)
   TIMESFORMER_STATIC          make every function static (a private copy per translation unit)
   TSF_MALLOC(sz,ctx)          define both or neither (#error otherwise); ctx is the user's
   TSF_FREE(p,ctx)               allocator context pointer. Default: malloc/free.
   TSF_ASSERT(x)               default assert(x); checks programmer errors only, never user input
   TSF_NO_SIMD                 portable C kernels only
   TSF_NO_OPENMP               ignore OpenMP even when compiled with -fopenmp
   TSF_NO_STDIO                leave out the functions that open files (load/save by path)
   TSF_MM_KC, TSF_MM_MC,       matmul blocking: depth of a packed block (256), and at most
   TSF_MM_NC                     the rows (1024) and columns (256) of a task. See SIMD below.

SHAPES & NOTATION

   Every tensor is a dense row-major float array; a shape comment such as `x // (M, IN)`
   means x[m*IN + i]. The glossary used everywhere:
       B batch, T frames, C image channels, H x W pixels, P patch size,
       N = (H/P)(W/P) patches per frame, D embedding width, NH heads, HS = D/NH head width,
       L layers, K classes, M rows of a matrix product (tokens), S sequences of length SL.
   The input clip is x // (B, C, T, H, W), the layout of the original TimeSformer code.

   Argument order, as in llm.c: forward takes outputs, then what it saves for backward,
   then inputs, then weights, then sizes. Backward takes the d-inputs, the d-weights, the
   d-output, then what forward saved, then the sizes.

   Backward functions ACCUMULATE (+=) into every gradient they are given, so a tensor used
   twice collects both contributions. Clear gradients yourself before a backward pass.
   Pointer arguments documented as "may be NULL" skip that gradient.

KERNELS

   linear      y = x.W^T + b (PyTorch nn.Linear)
   layernorm   (x - mean) / sqrt(var + eps) * w + b, biased variance, eps as an argument
   gelu        0.5 x (1 + erf(x / sqrt 2)), the exact form (not the tanh approximation)
   linear_gelu GELU(x.W^T + b), the bias and GELU in one pass (the MLP's first layer)
   softmax     row-wise, max-subtracted
   attention   multi-head scaled-dot-product self-attention over S sequences of SL tokens:
               qkv // (S, SL, 3D) holds q, k, v side by side, head g at columns g*HS..;
               scores = (q.k) * HS^-0.5 (the scale multiplies the finished dot product).
               tsf_attention_* store the (SL, SL) probabilities: the reference, and what
               you look at; tsf_attention_fused_* never do (online softmax over key tiles,
               probabilities recomputed in backward): what the model runs
   residual    y = a + b
   mean        the mean of R rows taken with a stride (the cls-token average over frames)
   crossentropy  logsumexp(logits) - <target, logits>, stable, optional label smoothing
   patch_embed the PxP stride-P convolution of every frame, as a gather and a matmul

   Every TimeSformer attention variant uses the same attention kernel; the variants differ
   only in how tokens are grouped into sequences (docs/model.md section 4).

THREADING

   Compile with -fopenmp to parallelise the kernels. OpenMP is used only on outer loops
   whose iterations write disjoint memory, and work is split into blocks whose boundaries
   never depend on the number of threads, so every result is bit-identical for any
   OMP_NUM_THREADS. The units of work:
     matmul           tasks of C (column blocks x row groups, at least 16 a product when it
                      has the rows), dealt out to whichever thread is free (one thread runs
                      a column block's row groups as one task); a batch of small products
                      (at most 64 rows each): whole items, a fixed share of them a thread;
     fused attention  one (sequence, head, block of 96 query rows) in forward, one
                      (sequence, head) in backward: batch x heads x sequences, so the many
                      small products of an attention keep every core busy (sequences of at
                      most 32 tokens: one (sequence, head) each way);
     row kernels      rows (layernorm, linear_gelu), column blocks of 4 vectors (32 columns
                      with AVX2, 64 with AVX-512) for sums over rows (bias and layernorm
                      gradients), blocks of 4096 values (elementwise).
   Kernels too small to pay for waking a thread run on one. With several threads on cores
   that other programs share, OMP_WAIT_POLICY=passive keeps waiting threads from spinning.
   The library has no global mutable state: separate data on separate threads just works.
   Called from inside your own OpenMP parallel region, with nesting off (OpenMP's default),
   the kernels run on the calling thread: that is how several small models can train side
   by side, one a thread, which keeps the cores busier than one model's small products can
   (tools/demo.c runs each step's batch as shards so). Where a kernel would run on one
   thread (too small, or inside your region), the matmul, the layer norms, the sums over rows
   and SGD's loops over a tensor call their work directly, without opening an OpenMP region:
   one that stays on one thread still costs the runtime a team and a wake-up (libgomp:
   3.7-5 us in a VM), and a small model's step has hundreds of such calls. The other kernels
   (attention, the gathers, GELU) open theirs with the `if` clause all the same.

SIMD

   The matmul micro-kernel is chosen at compile time, from the compiler's target flags:
       AVX-512F (-mavx512f, or -march=native on Zen 4 / recent Intel)   12 x 32 tile
       AVX2 + FMA (-mavx2 -mfma, or -march=haswell and later)           6 x 16 tile
       NEON (any AArch64)                                               8 x 12 tile
       portable C (everything else, or TSF_NO_SIMD)                     4 x 16 tile
   Plain -O2 on x86-64 gives the portable path; -march=native gives the widest path the
   CPU has. TSF_SIMD_NAME names the chosen path. The portable kernel is always compiled
   too, and the tests compare the two. FMA rounds differently from a multiply and an add,
   so SIMD and portable results agree to rounding, not bit for bit. The AVX paths also
   transpose 8 x 8 blocks in registers when they pack a transposed operand (packing only
   moves values: it changes no result).

   The matmul packs operands into panels on the stack: about
   4 * TSF_MM_KC * (TSF_MM_NC + 64) bytes per thread (330 KB by default), and the fused
   attention adds two 96 x 256 tiles (200 KB). Threads with a small stack (some embedded
   systems, musl's 128 KB default) need smaller blocks. A product given a work space
   (tsf_matmul_desc.work; the model keeps one in its activations, about 1 MB a thread of a
   parallel region, less for products of fewer than 1024 rows) packs each row group's panels
   of op(A) once for all the columns of C instead of once for each TSF_MM_NC of them: the
   same bits, up to 9% faster on ViT-B's linear layers at one thread (bench/RESULTS.md).

   Elsewhere the kernels are plain C written so that compilers vectorise it: rows are
   walked 16 values at a time through local arrays (sums in 16 partial sums), and exp and
   erf (GELU, softmax) are branch-free arithmetic instead of libm calls; gcc and clang at
   -O2 turn these into SSE2, AVX2, AVX-512 or NEON code. With AVX2 or AVX-512, GELU and the
   elementwise adds and products (residuals) are written with intrinsics: the same
   operations, so the same results, and fast whatever the compiler decides.

ATTENTION VARIANTS (docs/model.md sections 2-4)

   A clip of T frames gives N = (H/P)(W/P) patch tokens a frame and a cls token.
   space_only   every frame is a sequence of 1+N tokens (a ViT per frame); the frames' cls
                outputs are averaged before the final LayerNorm.
   joint        one sequence of 1+N*T tokens a clip, patch (n, t) at position 1 + n*T + t.
   divided      the same token order; each block first attends over time (B*N sequences
                of the T tokens of one patch, own LayerNorm, qkv, projection and temporal_fc),
                then over space (B*T sequences: the block's incoming cls token and the N
                patches of one frame), then the MLP. The cls token's spatial output is the
                mean over the T frames.
   The paper's two other schemes (not in the released code; the tensor names are ours):
   sparse_local_global  as divided, with a local step (the grid cut into 2 x 2 windows,
                each window with all T frames one sequence; local_* tensors) instead of the
                temporal one, then attention over the 8 parity classes of (frame, row,
                column) mod 2, each with the incoming cls token in front.
   axial        three steps: time (divided's temporal step), width (a sequence a frame's
                patch row; width_* tensors), then height (a sequence a frame's patch column,
                the cls token in front), averaged over the T*Wp columns for the cls token.
                                 attends to (one block)             ViT-B/16 8x224^2, K 400
   scheme                        before the MLP                     params     GFLOPs/clip
   space_only                    its frame                          86.1M      140.5
   joint_space_time              the whole clip                     86.1M      179.6
   divided_space_time            its patch over time, its frame     121.6M     195.8
   sparse_local_global           its window (all frames), its class 121.6M     206.9
   axial                         time, its row, its column          157.0M     249.4
   Windows and classes have unequal sizes when Hp, Wp or T is odd: the kernel then runs once
   for every run of sequences of one length, never on padding.
   cfg.pos_embed (the paper's Table 4): space_time adds position and time embeddings,
   space the position embedding only (no time_embeddings tensor), none neither (no
   position_embeddings either; the cls vector is cls_token itself).
   Every variant runs the same tsf_attention_fused_forward on (sequences, length, D); only
   the grouping of tokens into sequences differs. A clip of another size or length than the
   config's resizes the position and time embeddings with the original's nearest rule.
   The head reads only the cls rows of the last block, so that block computes only them
   after its attention's keys and values (its cls queries, projection, residual and MLP;
   m->all_tokens computes every token): the same logits to the bit, a quarter to a third
   less work for the demo's 2-block models, 5-7% for ViT-B's 12.

TRAINING

   tsf_model_train_init() adds gradients and SGD momentum (laid out as the parameters) and
   the activation gradients of one block (the backward pass reuses them block after block;
   only the residual stream's gradient crosses blocks), and from then on forward passes keep
   what backward reads (cfg.recompute: each block's input only; see MEMORY LAYOUT). Then,
   per step: tsf_model_zero_grad, tsf_model_loss (forward + mean cross-entropy, leaving
   d loss / d logits), tsf_model_backward (the forward's calls in reverse; gradients
   accumulate, so several micro-batches can build one effective batch), tsf_sgd_step
   (torch.optim.SGD: momentum, Nesterov, weight decay, optional clipping). Or, per step,
   tsf_model_loss then tsf_model_backward_sgd: the backward pass applies each block's SGD
   update as soon as that block's gradient is complete (the same weights to the bit; no
   accumulation, no clipping), and with cfg.fused_sgd the model keeps only one block's
   gradients. Stochastic depth
   (m->drop_path, the original's linear ramp over the blocks, one draw per sequence a branch
   runs on), dropout on the MLP hidden layer (m->dropout) and label smoothing
   (m->label_smoothing) are off by default, as in the paper's recipe only drop path 0.1 is
   on. tsf_checkpoint_save/load keep everything a run needs to resume bit-identically,
   written atomically.
   Bad numbers: every loader returns TSF_ERR_NONFINITE for a file with a NaN or infinite
   weight (naming it); tsf_model_loss returns TSF_ERR_NONFINITE when the loss is NaN or infinite and
   tsf_sgd_step when a gradient is (the weights are then left alone), so a run can stop and
   keep its last checkpoint; tsf_check_finite (an input) and tsf_model_check_finite (the
   weights and momentum, naming the tensor) look for NaN and infinity on request.

MEMORY LAYOUT

   One buffer holds every parameter (tsf_params: views, per-block tensors stacked with a
   leading L, each tensor 64-byte aligned), sized by one table (tsf__param_sizes); one buffer
   holds the activations of a forward pass (tsf_acts, sized by tsf__act_sizes for the
   batch and clip shape). tsf_model_bytes() gives both sizes before anything is allocated.
   Inference keeps one block's activations, reused block after block, with the residual
   stream updated in place, and never stores attention probabilities (the fused attention
   streams them): ViT-B/16 at 8 x 224^2 needs 126 MB of activations per clip (divided).
   tsf_model_train_init() switches to the training layout: gradients and momentum laid out
   as the parameters, every block's activations that backward reads (the attention keeps
   only each row's log-sum-exp, and backward recomputes the probabilities tile by tile; the
   MLP keeps its pre-GELU values and backward recomputes GELU; the LayerNorm outputs are kept
   for one block and made again from their inputs; cfg.keep_acts keeps both for every block
   instead, a little faster for small models), and one block's activation
   gradients; tsf_model_train_bytes() gives what that adds. With cfg.recompute training
   keeps only each block's input, and backward runs the block's forward again before its
   backward (one more forward pass of compute, less one block's; the same gradients to the
   bit). With cfg.fused_sgd the gradients take one block's room (tsf_model_backward_sgd
   applies each block's update as soon as it is complete) plus that of the tensors outside
   the blocks. ViT-B/16, 8 x 224^2, divided, batch 1, trains in 2.58 GB, in 1.72 GB with
   recompute (of which 1.46 GB are parameters, gradients and momentum), and in 1.28 GB with
   recompute and fused_sgd (parameters and momentum 0.97 GB, the gradients 0.04 GB).
   The buffers grow when a pass needs more and are never allocated per step.

FILE FORMATS

   Weights are safetensors (8-byte little-endian header length, a JSON header naming each
   tensor's dtype, shape and byte range, then the data), with Hugging Face's tensor names
   (timesformer.encoder.layer.3.attention.attention.qkv.weight, ...). Loading also takes the
   original facebookresearch names (model.blocks.3.attn.qkv.weight, ...) and F16, BF16 and
   F64 data. tsf_model_save writes F32 with the config, the preprocessing and the class
   names in __metadata__, so a saved file is self-contained. Every offset, shape, dtype and
   the header itself are checked, and the tensors must cover the data exactly (no byte left
   over, none shared); a missing, extra or misshapen tensor is named in the error.

   PyTorch checkpoints load too: torch.save's zip archive (PyTorch 1.6 and later; ZIP64;
   entries under any folder name: data.pkl, data/<key>, byteorder), as Hugging Face's
   pytorch_model.bin and the original code's .pyth/.pth files are. data.pkl is a pickle, a
   program that Python runs and that may call any function; the library runs it on a
   machine that calls nothing (protocols 2 to 5): containers, strings and numbers are
   built, torch._utils._rebuild_tensor_v2 / _rebuild_parameter become tensor descriptions
   (storage, offset, sizes, strides: strided and shared storages are read as they are),
   collections.OrderedDict an empty dict; any other global (os.system, eval, a config
   class) is an opaque value that can never become a tensor, and a parameter that holds one
   is refused by name. The state dict is the saved dict itself or the one under
   model_state, state_dict, model or module; "model." and "module." prefixes and both
   naming schemes are accepted, and optimizer state is skipped. A checkpoint without a
   config (a bare .pyth) gets one from its tensors' shapes, the heads as D / 64 (ViT-B's
   head width; any other D needs a config). The legacy pre-1.6 format is refused by name.

   A Hugging Face folder holds config.json (TimesformerConfig; keys that would change the
   computation and that the library does not compute, such as hidden_act other than
   "gelu", are refused by name), the weights as model.safetensors, pytorch_model.bin or
   shards listed in *.index.json, and optionally preprocessor_config.json
   (VideoMAEImageProcessor: short side, centre crop, rescale, mean and std; into
   cfg.short_side, cfg.crop_size, cfg.mean and cfg.std). Files are opened only when they are
   regular files (a FIFO would block), and every error names the file.

ERRORS

   Functions that can fail return a tsf_status; tsf_status_string() explains it. Loaders
   also fill a tsf_error with the problem in words (the model loaders name the file; for
   clips and manifests the caller, who knows which file it opened, adds it). The kernels
   cannot fail: they check their arguments with TSF_ASSERT, because wrong sizes there are
   programming errors. The library never prints and never calls exit(). A call whose
   allocation fails returns TSF_ERR_ALLOC, frees what it had taken and leaves its objects
   usable (call it again, or free them); a save that cannot be written returns TSF_ERR_IO and
   leaves the file it would have replaced as it was (tests/test_fail.c, fuzzed readers in
   tests/fuzz/).

REVISIONS

   0.2.0 (2026-12-01)  PyTorch checkpoints (torch.save zip + a pickle reader that runs no
                       code), sharded folders, preprocessor_config.json, config fields
                       refused by name, tsf_model_load_file
   0.1.0 (2026-11-21)  kernels with backward passes, blocked SIMD matmul; the model
                       (three attention variants, forward), safetensors and HF folders

LICENSE

   MIT, see the end of the file.
*/

#ifndef TIMESFORMER_H
#define TIMESFORMER_H

#define TSF_VERSION_MAJOR 0
#define TSF_VERSION_MINOR 2
#define TSF_VERSION_PATCH 0
#define TSF_VERSION_STRING "0.2.0"

#include <stddef.h>

#if defined(TIMESFORMER_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define TSFDEF static __attribute__((unused)) /* no warning for the functions you don't call */
#elif defined(TIMESFORMER_STATIC)
#define TSFDEF static
#else
#define TSFDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
   Status codes. Each entry: name, text returned by tsf_status_string().
   ------------------------------------------------------------------------------------------ */
#define TSF_STATUS_LIST(X)                                                                         \
    X(TSF_OK, "ok")                                                                                \
    X(TSF_ERR_ALLOC, "out of memory")                                                              \
    X(TSF_ERR_ARG, "invalid argument")                                                             \
    X(TSF_ERR_CONFIG, "invalid configuration")                                                     \
    X(TSF_ERR_OVERFLOW, "size too large (arithmetic overflow)")                                    \
    X(TSF_ERR_IO, "input/output error")                                                            \
    X(TSF_ERR_FORMAT, "malformed file")                                                            \
    X(TSF_ERR_NONFINITE, "NaN or infinity in the data")

typedef enum tsf_status {
#define TSF__STATUS_ENUM(name, text) name,
    TSF_STATUS_LIST(TSF__STATUS_ENUM)
#undef TSF__STATUS_ENUM
        TSF_STATUS_COUNT
} tsf_status;

/* The library's version, "major.minor.patch". */
TSFDEF const char *tsf_version(void);
/* A short English description of a status code (never NULL). */
TSFDEF const char *tsf_status_string(tsf_status status);
/* The matmul path compiled in: "avx512", "avx2", "neon" or "portable". */
TSFDEF const char *tsf_simd_name(void);

/* ------------------------------------------------------------------------------------------
   Random numbers: one small generator (splitmix64 seeding a xoshiro128+ state), owned by
   the caller, so one seed drives all randomness and two generators never interfere.
   ------------------------------------------------------------------------------------------ */
typedef struct tsf_rng {
    unsigned int s[4];
} tsf_rng;

/* Seed a generator; the same seed always gives the same sequence. */
TSFDEF void tsf_rng_seed(tsf_rng *rng, unsigned long long seed);
/* A 32-bit random integer. */
TSFDEF unsigned int tsf_rng_u32(tsf_rng *rng);
/* Uniform in [0, 1). */
TSFDEF float tsf_rng_uniform(tsf_rng *rng);
/* Standard normal (mean 0, std 1), by Box-Muller. */
TSFDEF float tsf_rng_normal(tsf_rng *rng);

/* ------------------------------------------------------------------------------------------
   Matrix products. Every product of the forward and backward passes goes through
   tsf_matmul(), which is blocked, packed and SIMD-vectorised, and parallel over output
   blocks with OpenMP.

   Element (i, j) of an operand X with leading dimension ldX is X[i*ldX + j]. A transposed
   operand is read as stored: op(A) = A^T means A is stored K x M.
   ------------------------------------------------------------------------------------------ */
typedef struct tsf_matmul_desc {
    int M, N, K;       /* C is M x N; the inner dimension is K                          */
    const float *A;    /* op(A) is M x K: A stored M x K, or K x M when trans_a         */
    int lda, trans_a;  /*   row stride of A as stored (0: its natural width)            */
    const float *B;    /* op(B) is K x N: B stored K x N, or N x K when trans_b         */
    int ldb, trans_b;  /*   row stride of B as stored (0: its natural width)            */
    float *C;          /* C is M x N                                                    */
    int ldc;           /*   row stride of C (0: N)                                      */
    int accumulate;    /* 0: C = op(A).op(B); 1: C += op(A).op(B)                       */
    const float *bias; /* NULL, or N values added to every row of C (a linear layer's
                          bias: tile by tile while the tile is in cache, or where a kernel
                          reads A in place as the start of the sums; the rounding differs
                          by an ulp or so, not the result's meaning)                   */
    /* Batched form, for attention: count * group products. Item (s, g) uses
       X + s*stride_X + g*group_stride_X for X in A, B, C. 0 counts mean 1. */
    int count, group;
    size_t stride_a, stride_b, stride_c;
    size_t group_stride_a, group_stride_b, group_stride_c;
    /* Optional scratch: NULL, or work_floats floats the product may use. With
       tsf_matmul_work_floats(n) floats, each of n threads packs its rows of op(A) once for
       all the columns of C instead of once for each TSF_MM_NC of them (large products with
       many columns: up to 9% faster). The result is the same to the bit with or without it. */
    float *work;
    size_t work_floats;
    /* Optional: op(B) packed already by tsf_matmul_pack_b for this N and K, or NULL. The
       product then reads B's panels from here instead of packing them (weights used by many
       products: packed once, not once per product and row group). B must still be set (a
       few paths read B in place); the result is the same to the bit. One product only:
       ignored when count or group is above 1. */
    const float *packed_b;
} tsf_matmul_desc;

/* Run the (batched) product described by d: C (+)= op(A) . op(B) for every item. */
TSFDEF void tsf_matmul(const tsf_matmul_desc *d);
/* Floats of tsf_matmul_desc.work that let `threads` threads each pack a block of op(A)'s rows
   once for all columns (about 1 MB a thread with the default blocks). */
TSFDEF size_t tsf_matmul_work_floats(int threads);
/* Floats of a packed op(B) of N columns and depth K (tsf_matmul_pack_b): N rounded up to
   the kernel's panel width, times K. */
TSFDEF size_t tsf_matmul_packed_b_floats(int N, int K);
/* Pack op(B) of d (d->B, N, K, ldb, trans_b; the rest is not read) into packed, which holds
   tsf_matmul_packed_b_floats(N, K) floats, in the order the compiled kernel reads it: for
   each block of TSF_MM_KC depths, panels of the kernel's width, one after the other. The
   layout depends on the build (SIMD, TSF_MM_KC): pack in the process that multiplies. */
TSFDEF void tsf_matmul_pack_b(float *packed, const tsf_matmul_desc *d);
/* C // (M, N) (+)= A // (M, K) . B // (N, K) ^T     (linear forward: y = x.W^T) */
TSFDEF void tsf_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);
/* C // (M, N) (+)= A // (M, K) . B // (K, N)        (linear backward: dx = dy.W) */
TSFDEF void tsf_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);
/* C // (M, N) (+)= A // (K, M) ^T . B // (K, N)     (linear backward: dW = dy^T.x) */
TSFDEF void tsf_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);

/* ------------------------------------------------------------------------------------------
   Kernels: each _forward is followed by its _backward. Backward accumulates (+=).
   ------------------------------------------------------------------------------------------ */

/* Linear layer. out // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T + bias // (OUT).
   bias may be NULL (no bias). */
TSFDEF void tsf_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                               int M, int IN, int OUT);
/* dinp // (M, IN) += dout.weight; dweight // (OUT, IN) += dout^T.inp;
   dbias // (OUT) += column sums of dout. dinp, dweight and dbias may each be NULL. */
TSFDEF void tsf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int M, int IN, int OUT);

/* LayerNorm over the last dimension, biased variance, eps inside the square root.
   out // (M, D); saves mean // (M) and rstd // (M) = 1/sqrt(var + eps) for backward. */
TSFDEF void tsf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int M, int D, float eps);
/* dinp // (M, D) += ...; dweight, dbias // (D) += .... Any of the three may be NULL. */
TSFDEF void tsf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int M, int D);

/* GELU, exact erf form. out // (n) = 0.5 inp (1 + erf(inp / sqrt 2)). out may alias inp. */
TSFDEF void tsf_gelu_forward(float *out, const float *inp, size_t n);
/* dinp // (n) += dout * GELU'(inp). */
TSFDEF void tsf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* A linear layer followed by GELU, with the bias and GELU in one pass over the product:
   pre // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T + bias // (OUT) (may be NULL),
   out // (M, OUT) = GELU(pre). pre may be NULL when backward will not run (inference). */
TSFDEF void tsf_linear_gelu_forward(float *out, float *pre, const float *inp, const float *weight,
                                    const float *bias, int M, int IN, int OUT);
/* dpre // (M, OUT) is scratch, overwritten with dout * GELU'(pre) (it may be dout itself);
   then dinp, dweight and dbias += ... as tsf_linear_backward's (each may be NULL). */
TSFDEF void tsf_linear_gelu_backward(float *dinp, float *dweight, float *dbias, float *dpre,
                                     const float *dout, const float *pre, const float *inp,
                                     const float *weight, int M, int IN, int OUT);

/* Row-wise softmax with max subtraction: out // (M, N) = softmax(inp) over each row.
   out may alias inp. */
TSFDEF void tsf_softmax_forward(float *out, const float *inp, int M, int N);
/* dinp // (M, N) += out * (dout - sum(dout * out)) per row; out is the forward's output. */
TSFDEF void tsf_softmax_backward(float *dinp, const float *dout, const float *out, int M, int N);

/* Multi-head scaled-dot-product self-attention on S independent sequences of SL tokens.
   qkv // (S, SL, 3D): q, k, v of token l in columns [0,D), [D,2D), [2D,3D); head g uses
   columns g*HS .. g*HS+HS-1 of each, HS = D/NH.
   att // (S, NH, SL, SL): saves the probabilities softmax((q.k^T) * HS^-0.5).
   out // (S, SL, D): the heads' outputs concatenated head-major (column g*HS + j). */
TSFDEF void tsf_attention_forward(float *out, float *att, const float *qkv, int S, int SL, int D,
                                  int NH);
/* dqkv // (S, SL, 3D) += ...; datt // (S, NH, SL, SL) is scratch (overwritten). */
TSFDEF void tsf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, int S, int SL, int D, int NH);

/* The same attention, fused: no (SL, SL) probability matrix is ever stored. Each (sequence,
   head, block of query rows) streams over blocks of keys with an online softmax: a running
   max and sum per query row, the output rows rescaled whenever the max grows (the
   FlashAttention scheme). Sequences of at most 32 tokens with heads of at most 128 values,
   a multiple of 4 (TimeSformer's time steps, small models' frames) take a direct path instead: the
   whole (SL, SL) tile of one (sequence, head) in local arrays, queries side by side in the vector
   lanes, no packing. out as tsf_attention_forward's, equal to rounding. lse // (S, NH, SL) may be
   NULL (inference); otherwise it saves each query row's log-sum-exp of its scaled scores, from
   which the backward recomputes the probabilities. */
TSFDEF void tsf_attention_fused_forward(float *out, float *lse, const float *qkv, int S, int SL,
                                        int D, int NH);
/* dqkv // (S, SL, 3D) += ...: the probabilities recomputed block by block from qkv and lse;
   out // (S, SL, D) is the forward's output. */
TSFDEF void tsf_attention_fused_backward(float *dqkv, const float *dout, const float *qkv,
                                         const float *out, const float *lse, int S, int SL, int D,
                                         int NH);

/* Residual connection. out // (n) = a + b. out may alias a or b. */
TSFDEF void tsf_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da // (n) += dout; db // (n) += dout. da and db may alias each other or be NULL. */
TSFDEF void tsf_residual_backward(float *da, float *db, const float *dout, size_t n);

/* Mean over groups of rows: out // (G, D), out[g] = (1/R) sum_r inp[(g*R + r) * stride + 0..D-1].
   stride >= D is the distance between rows, e.g. (1+N)*D to average the cls rows of R frames. */
TSFDEF void tsf_mean_forward(float *out, const float *inp, int G, int R, int D, size_t stride);
/* dinp rows += dout[g] / R, at the same strided rows. */
TSFDEF void tsf_mean_backward(float *dinp, const float *dout, int G, int R, int D, size_t stride);

/* Cross-entropy with a stable logsumexp and optional label smoothing eps in [0, 1):
   the target is (1-eps) on the label plus eps/K on every class.
   losses // (B) = logsumexp(logits[b]) - sum_k target[k] logits[b][k];
   probs // (B, K) saves softmax(logits) for backward. labels // (B) in [0, K). */
TSFDEF void tsf_crossentropy_forward(float *losses, float *probs, const float *logits,
                                     const int *labels, int B, int K, float smoothing);
/* dlogits // (B, K) += dloss * (probs - target). For a mean over the batch, dloss = 1/B. */
TSFDEF void tsf_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B,
                                      int K, float smoothing, float dloss);

/* Patch embedding: the Conv2d(C -> D, kernel P, stride P) of every frame of every clip.
   inp // (B, C, T, H, W); patch (i, j) of frame (b, t) is row m = ((b*T + t)*Hp + i)*Wp + j,
   Hp = H/P, Wp = W/P (leftover pixels are ignored).
   cols // (B*T*Hp*Wp, C*P*P) saves the gathered patches, column c*P*P + ky*P + kx.
   out // (B*T*Hp*Wp, D) = cols . weight^T + bias, weight // (D, C, P, P), bias // (D). */
TSFDEF void tsf_patch_embed_forward(float *out, float *cols, const float *inp, const float *weight,
                                    const float *bias, int B, int C, int T, int H, int W, int P,
                                    int D);
/* dinp // (B, C, T, H, W) += ... (may be NULL; then dcols is unused and may be NULL);
   dcols // (B*T*Hp*Wp, C*P*P) is scratch; dweight, dbias += .... */
TSFDEF void tsf_patch_embed_backward(float *dinp, float *dcols, float *dweight, float *dbias,
                                     const float *dout, const float *cols, const float *weight,
                                     int B, int C, int T, int H, int W, int P, int D);

/* ------------------------------------------------------------------------------------------
   The model. A TimeSformer is a ViT whose tokens are the P x P patches of T frames; the
   attention variants differ only in which tokens attend to which (docs/model.md section 4).
   ------------------------------------------------------------------------------------------ */
typedef enum tsf_attention {
    TSF_ATTN_DIVIDED = 0, /* "divided_space_time": temporal, then spatial attention (TimeSformer) */
    TSF_ATTN_JOINT = 1,   /* "joint_space_time": one attention over all N*T tokens of a clip */
    TSF_ATTN_SPACE = 2,   /* "space_only": every frame on its own; cls tokens averaged (ViT) */
    TSF_ATTN_LOCAL_GLOBAL = 3, /* "sparse_local_global": local windows of all frames, then
                                  every second patch and frame (stride classes) */
    TSF_ATTN_AXIAL = 4         /* "axial": time, then width, then height */
} tsf_attention;
#define TSF_NUM_ATTENTION 5

/* The position-embedding ablation (the paper's Table 4): which embeddings are added. */
typedef enum tsf_pos_embed {
    TSF_POS_SPACE_TIME = 0, /* "space_time": position and time embeddings (released models) */
    TSF_POS_SPACE = 1,      /* "space": the position embedding only (no time_embeddings)    */
    TSF_POS_NONE = 2        /* "none": neither                                                */
} tsf_pos_embed;

/* A model's shape and preprocessing. Zero fields mean the laptop-sized defaults in brackets;
   tsf_config_resolve() fills them in and checks the result. */
typedef struct tsf_config {
    int image_size;        /* S0: frame side the position table is built for [112]          */
    int patch_size;        /* P [16]                                                        */
    int channels;          /* C [3]                                                         */
    int frames;            /* T0: frames the time embedding is built for [8]                */
    int dim;               /* D [192]                                                       */
    int depth;             /* L [4]                                                         */
    int heads;             /* NH [3]; D must be a multiple                                  */
    float mlp_ratio;       /* MLP hidden width HM = (int)(D * mlp_ratio) [4]                */
    int classes;           /* K [10]                                                        */
    int attention;         /* a tsf_attention [TSF_ATTN_DIVIDED]                            */
    int pos_embed;         /* a tsf_pos_embed [TSF_POS_SPACE_TIME]                          */
    float ln_eps;          /* LayerNorm eps [1e-6]                                          */
    int no_qkv_bias;       /* 1: the qkv projections have no bias (released models have one) */
    float mean[3], std[3]; /* input = (pixel/255 - mean[c]) / std[c]; all std 0: [0.45, 0.225] */
    int bgr;               /* 1: the model sees channels in BGR order (the original SSv2 models) */
    int short_side;        /* test views: frames are resized so their short side is this ... */
    int crop_size;         /* ... then the centre crop_size x crop_size is the input
                              [both image_size]; from a preprocessor_config.json              */
    int recompute;         /* training keeps each block's input only, and backward runs the
                              block's forward again from it: one block's activations instead
                              of L blocks', for one more forward pass of compute [0]       */
    int keep_acts;         /* training keeps every block's LayerNorm and GELU outputs too,
                              which backward otherwise makes again from what it keeps: one
                              LayerNorm pass a norm and one GELU pass a block fewer each
                              step, for (NS + 2) D + HM more floats a token a block (NS:
                              the scheme's side steps); and it keeps GELU's derivative,
                              so backward's GELU is a product. The same results. Small
                              models trained from scratch gain most. Ignored with
                              recompute [0]                                                */
    int fused_sgd;         /* training never holds the whole gradient: tsf_model_backward_sgd
                              applies each block's SGD update as soon as its gradient is
                              complete, so gradients take one block's room, not L blocks' [0] */
    void *alloc_ctx;       /* handed to TSF_MALLOC / TSF_FREE                               */
} tsf_config;

/* The parameters: views into one buffer. Per-block tensors are stacked with a leading L.
   Tensors a variant lacks (time_embed in space_only or without it in cfg.pos_embed, t_*
   outside divided and axial, l_* outside sparse_local_global, w_* outside axial) are NULL.
   The table of every tensor with both names is "the parameter table" in the implementation
   (and docs/model.md section 7). */
typedef struct tsf_params {
    float *cls_token;         /* (D)                                    cls_token */
    float *pos_embed;         /* (1 + (S0/P)^2, D), row 0 for cls         pos_embed */
    float *time_embed;        /* (T0, D)                                  time_embed */
    float *patch_w, *patch_b; /* (D, C, P, P), (D)                        patch_embed.proj */
    float *t_ln_w, *t_ln_b;   /* (L, D) x2                                blocks.i.temporal_norm1 */
    float *t_qkv_w,
        *t_qkv_b; /* (L, 3D, D), (L, 3D)                      blocks.i.temporal_attn.qkv */
    float *t_proj_w, *t_proj_b; /* (L, D, D), (L, D) blocks.i.temporal_attn.proj */
    float *t_fc_w, *t_fc_b;     /* (L, D, D), (L, D)                        blocks.i.temporal_fc */
    /* sparse_local_global's local step, the same eight tensors:      blocks.i.local_* */
    float *l_ln_w, *l_ln_b, *l_qkv_w, *l_qkv_b, *l_proj_w, *l_proj_b, *l_fc_w, *l_fc_b;
    /* axial's width step (axial's time step is t_*):                 blocks.i.width_* */
    float *w_ln_w, *w_ln_b, *w_qkv_w, *w_qkv_b, *w_proj_w, *w_proj_b, *w_fc_w, *w_fc_b;
    float *ln1_w, *ln1_b;   /* (L, D) x2                                blocks.i.norm1 */
    float *qkv_w, *qkv_b;   /* (L, 3D, D), (L, 3D)                      blocks.i.attn.qkv */
    float *proj_w, *proj_b; /* (L, D, D), (L, D)                        blocks.i.attn.proj */
    float *ln2_w, *ln2_b;   /* (L, D) x2                                blocks.i.norm2 */
    float *fc1_w, *fc1_b;   /* (L, HM, D), (L, HM)                      blocks.i.mlp.fc1 */
    float *fc2_w, *fc2_b;   /* (L, D, HM), (L, D)                       blocks.i.mlp.fc2 */
    float *lnf_w, *lnf_b;   /* (D) x2                                   norm */
    float *head_w, *head_b; /* (K, D), (K)                              head */
} tsf_params;
#define TSF_NUM_PARAMS 45

/* Activations of one forward pass, for a batch of B clips of T frames with N patches each.
   Rows: R tokens in all (joint/divided B*(1+N*T), token 1 + n*T + t of clip b at row
   b*(1+N*T) + 1 + n*T + t; space_only B*T*(1+N), frame b*T + t at rows (b*T + t)*(1+N)...).
   Divided blocks also hold the temporal sequences, Rt = B*N*T rows (sequence b*N + n,
   frame t at row (b*N + n)*T + t), and run the block's attention on the spatial sequences,
   Rs = B*T*(1+N) rows (frame b*T + t, token 0 the cls, token 1 + n patch n). RA = the rows
   of the block's main attention (R, or Rs in divided); SA, SL its sequences and their length.
   sparse_local_global and axial are laid out the same way: their side steps' sequences
   (local, or time then width) in t_* and u, one step's Rt rows after the other's, the main
   step's (G sequences a clip, each with a cls copy: Rs = B*(N*T + G)) in s_in.
   Per-block tensors (t_in .. out) are stacked with a leading LS: in inference LS = 1, one
   block's reused by every block, and the residual stream is updated in place (out is each
   block's input and output); once training is set up, LS = L for what backward reads (U, the
   LayerNorm outputs t_ln, ln1, ln2 and fch_gelu stay one block's: backward remakes them,
   tsf__block_remake; with cfg.keep_acts they too have LS = L and are not remade), and with
   cfg.recompute LS = L for out alone (each block's input), 1 for the rest (tsf__act_sizes). NULL:
   not needed by this kind of pass. The last block computes only the rows the head reads
   (unless m->all_tokens): its atty and lse hold SA rows (each main sequence's cls query),
   its res1, ln2, fch, fch_gelu and out SM rows (the cls rows), at the start of their buffers. */
typedef struct tsf_acts {
    float *input;                     /* (B, C, T, H, W), the normalised clip (u8 entry point)  */
    float *cols;                      /* (B*T*N, C*P*P) gathered patches                         */
    float *patches;                   /* (B*T*N, D) patch embeddings                             */
    float *x0;                        /* (R, D) tokens entering block 0                          */
    float *t_in, *t_ln;               /* (LS, Rt, D) temporal sequences, their LayerNorm         */
    float *t_mean, *t_rstd;           /* (LS, Rt)                                                */
    float *t_qkv;                     /* (LS, Rt, 3D)                                            */
    float *t_lse;                     /* (LS, B*N, NH, T) log-sum-exp of each attention row
                                         (training: backward recomputes the probabilities)      */
    float *t_atty, *t_proj;           /* (LS, Rt, D) attention output, after the projection      */
    float *u;                         /* (LS, R, D) tokens after the temporal step               */
    float *s_in;                      /* (LS, Rs, D) spatial sequences                           */
    float *ln1, *ln1_mean, *ln1_rstd; /* (LS, RA, D), (LS, RA) x2                            */
    float *qkv;                       /* (LS, RA, 3D)                                            */
    float *lse;                       /* (LS, SA, NH, SL) as t_lse (training)                   */
    float *atty;                      /* (LS, RA, D) attention output before the projection      */
    float *res1;                      /* (LS, R, D) tokens after the attention residual          */
    float *ln2, *ln2_mean, *ln2_rstd; /* (LS, R, D), (LS, R) x2                              */
    float *fch, *fch_gelu;            /* (LS, R, HM) MLP hidden layer before (training) and
                                         after GELU; with cfg.keep_acts fch holds GELU' at
                                         it instead, all that backward needs of it       */
    float *out;                       /* (LS, R, D) block outputs                                */
    float *keep;                      /* (L, B*N + SA + SM) drop-path scales, see below          */
    float *att;                       /* (L, SA, NH, SL, SL) every block's attention
                                         probabilities, only with m->keep_attention (when a
                                         step's sequences differ in length: per sequence in
                                         order, NH (len, len) each)                          */
    float *t_att;                     /* the same for the first side step: (L, B*N, NH, T, T)
                                         divided's and axial's temporal step                  */
    float *pooled;                    /* (B, D) cls vector (space_only: mean over frames)        */
    float *lnf, *lnf_mean, *lnf_rstd; /* (B, D), (B) x2                                      */
    float *logits;                    /* (B, K)                                                  */
    float *probs;                     /* (B, K) softmax of the logits (tsf_model_loss)           */
    float *losses;                    /* (B) cross-entropy of each clip (tsf_model_loss)         */
    float *scratch;                   /* (max(R, Rs) + B, D) temporaries                         */
    float *mm_work;                   /* the products' work space (tsf_matmul_desc.work), for
                                         the threads a parallel region had at reserve time   */
} tsf_acts;
/* Stochastic depth drops a residual branch for a whole sequence, as the original's DropPath
   does on the tensor the branch runs on: keep holds, per block, the scale (0 or 1/(1-rate))
   of each temporal sequence (B*N, divided only), attention sequence (SA) and MLP sample
   (SM = B*T in space_only, else B). All ones outside training. */

/* Gradients of the activations, for one block at a time: the backward pass walks the blocks
   from last to first and only the residual stream's gradient crosses from one to the next.
   RM = max(R, Rs) rows, RT = max(RA, Rt) rows. */
typedef struct tsf_grad_acts {
    float *dres;           /* (R, D) d loss / d residual stream                     */
    float *dbranch;        /* (RM, D) gradient of a branch's output, in its row order */
    float *dnorm;          /* (RT, D) gradient of a LayerNorm's output              */
    float *dattn;          /* (RT, D) gradient of an attention output (before proj) */
    float *dqkv;           /* (RT, 3D)                                              */
    float *dseq;           /* (RT, D) gradient of grouped sequences                 */
    float *dhidden;        /* (R, HM) MLP hidden layer: after GELU, then before it  */
    float *dpatches;       /* (B*T*N, D)                                            */
    float *dcols;          /* (B*T*N, C*P*P) for the input gradient                 */
    float *dlogits;        /* (B, K) left by tsf_model_loss                         */
    float *dlnf, *dpooled; /* (B, D)                                                */
} tsf_grad_acts;

/* A model. The caller owns the struct; the library owns the buffers it allocated. */
typedef struct tsf_model {
    tsf_config cfg;      /* resolved: no zero fields                                */
    tsf_params params;   /* views into param_memory                                 */
    float *param_memory; /* every parameter, one buffer                             */
    size_t num_params;   /* parameter count (without alignment padding)             */
    size_t param_floats; /* floats in param_memory (with padding)                   */
    tsf_acts acts;       /* views into act_memory, for the last reserved shape      */
    float *act_memory;
    size_t act_floats;      /* capacity of act_memory                                  */
    size_t act_work_floats; /* the floats of acts.mm_work                          */
    int B, T, H, W;         /* shape the activation views were laid out for            */
    int owns_memory;        /* 1: tsf_model_free releases the buffers                  */
    char *labels;           /* K class names, NUL-separated, or NULL                    */
    char **label_at;        /* K pointers into labels (tsf_model_label), or NULL        */
    /* tsf_model_pack_weights: the matrices the forward pass multiplies by, packed once in
       the matmul kernel's order (views into packed_memory; NULL where not packed) */
    tsf_params packed;
    float *packed_memory;
    size_t packed_floats;
    int packed_stale; /* the library changed the parameters since (SGD, init_params): the
                         next forward pass packs them again before it uses them */
    /* training (tsf_model_train_init): gradients and SGD momentum share the parameters'
       layout; the activation gradients follow the reserved shape */
    tsf_params grads; /* views into grad_memory (NULL before training)       */
    float *grad_memory;
    float *momentum_memory; /* SGD momentum buffers, laid out as param_memory       */
    size_t grad_floats;     /* floats in grad_memory                                */
    int grad_fused;         /* grad_memory holds one block's gradients (cfg.fused_sgd
                               at tsf_model_train_init), else every parameter's      */
    float *grad_spare;      /* with grad_fused and grad_wait: a second block's
                               gradients (blocks alternate; NULL until needed)      */
    long long sgd_steps;    /* SGD steps taken (the first one seeds the momentum)   */
    tsf_grad_acts gacts;    /* views into gact_memory                               */
    float *gact_memory;
    size_t gact_floats;
    int has_dlogits;       /* tsf_model_loss left dlogits for a backward pass      */
    int act_recompute;     /* the cfg.recompute the activations are laid out for   */
    int act_keep;          /* ... and cfg.keep_acts (0 with recompute)              */
    int keep_attention;    /* 1: forward passes keep every block's attention
                              probabilities in acts.att and acts.t_att (to look at
                              them, as tsf attention does); 0: they are never stored */
    int all_tokens;        /* 1: the last block computes every token's output; 0 (the
                              default): only the cls rows the head reads, after its
                              attention's keys and values (the same logits, less work;
                              see tsf__block_forward). A backward pass follows the
                              choice of the forward pass it runs after */
    int act_all_tokens;    /* the all_tokens of the last forward pass               */
    float drop_path;       /* stochastic depth rate of the last block (0: off);
                              block l drops with drop_path * l / (L-1)          */
    float label_smoothing; /* cross-entropy label smoothing (0: off)               */
    /* Called by tsf_model_backward_sgd with every range of finished gradient before its
       update (block l's, from the last block; then, block -1, the tensors outside the
       blocks), so that a data-parallel driver can sum gradients across processes while the
       backward pass goes on (NULL: none). A status other than TSF_OK stops the pass with
       it. See tsf_model_grad_buffer. */
    tsf_status (*grad_hook)(void *ctx, float *grad, size_t n, int block);
    void *grad_hook_ctx;
    /* Overlap (NULL: none; used only with grad_hook). When set, grad_hook only STARTS the
       work on a group's ranges (a block's, or block -1's) and may return at once; the pass
       goes on, and grad_wait(grad_hook_ctx, block) is called when that group's update is
       due: block l's after block l-1's backward, block 0's after the embeddings' backward
       (and after block -1's grad_hook), block -1's last. It returns once the ranges hold
       what the update must use; until then the library does not touch them. So the sum of
       block l's gradient can run while block l-1's backward does. The updates, their order
       and the norm are those without grad_wait, to the bit. Every group that was given to
       grad_hook gets its grad_wait, even when the pass stops (a failing hook, a NaN): a
       driver never leaves work under way; a status other than TSF_OK stops the pass. With
       cfg.fused_sgd, block l-1's gradient needs room while block l's is being summed: the
       first tsf_model_backward_sgd with grad_wait set allocates one more block's gradients
       (grad_spare; blocks alternate between the two), which tsf_model_train_bytes does not
       count (ViT-B divided: 40 MB); its ranges lie outside tsf_model_grad_buffer's. */
    tsf_status (*grad_wait)(void *ctx, int block);
    float dropout;             /* dropout on the MLP hidden layer, after GELU (0: off, as
                                  the original); masks are redrawn in backward from
                                  dropout_seed instead of being stored                 */
    unsigned int dropout_seed; /* drawn from rng by each training forward pass      */
    tsf_rng rng;               /* drop-path and dropout draws; seeded by tsf_model_init */
} tsf_model;

/* Fill the zero fields of *cfg with defaults and check it. TSF_ERR_CONFIG if invalid. */
TSFDEF tsf_status tsf_config_resolve(tsf_config *cfg);
/* The name of an attention variant as the original code spells it ("divided_space_time"). */
TSFDEF const char *tsf_attention_name(int attention);
/* Parse an attention name ("divided_space_time", "joint_space_time", "space_only",
   "sparse_local_global", "axial"); -1 if unknown. */
TSFDEF int tsf_attention_parse(const char *name);
/* The name of a position-embedding choice ("space_time", "space", "none"), and back (-1 if
   unknown). */
TSFDEF const char *tsf_pos_embed_name(int pos_embed);
TSFDEF int tsf_pos_embed_parse(const char *name);
/* Number of parameters of a (resolved) config. */
TSFDEF size_t tsf_config_num_params(const tsf_config *cfg);
/* Multiply-adds of one forward pass of a (resolved) config for one clip of T frames of H x W
   (0s: the config's own), counted as the paper counts FLOPs (every matrix product, one FLOP
   a multiply-add; docs/model.md section 8), for every token of every block (the library
   skips the last block's rows that the head does not read: see tsf__block_forward). */
TSFDEF double tsf_config_flops(const tsf_config *cfg, int T, int H, int W);
/* Bytes of parameters (one buffer) and of activations for an inference forward pass of B
   clips of T frames of H x W (0s: the config's own; one block's activations, reused by every
   block, and the products' work space for the threads of a parallel region started here,
   about 1 MB each). Either pointer may be NULL. */
TSFDEF tsf_status tsf_model_bytes(const tsf_config *cfg, int B, int T, int H, int W,
                                  size_t *param_bytes, size_t *act_bytes);
/* Extra bytes that training adds for that pass (tsf_model_train_init): gradients and SGD
   momentum (each as large as the parameters; cfg->fused_sgd: gradients for one block and the
   tensors outside the blocks), one block's activation gradients, and every block's
   activations instead of one block's (cfg->recompute: every block's input). */
TSFDEF tsf_status tsf_model_train_bytes(const tsf_config *cfg, int B, int T, int H, int W,
                                        size_t *bytes);
/* Create a model with parameters initialised as the original code does (docs/model.md
   section 7) from one seed, and activations for batches of up to B clips of the config's size
   (B = 0: none yet; the first forward pass makes room). */
TSFDEF tsf_status tsf_model_init(tsf_model *m, const tsf_config *cfg, int B,
                                 unsigned long long seed);
/* Make room for a forward pass of B clips of T frames of H x W (reallocates only to grow). */
TSFDEF tsf_status tsf_model_reserve(tsf_model *m, int B, int T, int H, int W);
/* Release the model's buffers. The struct can be reused. Safe after any failure of
   tsf_model_init or the tsf_model_load functions: they leave the model empty. */
TSFDEF void tsf_model_free(tsf_model *m);
/* Pack the matrices that forward passes multiply by (the blocks' qkv, proj, fc, fc1 and fc2
   weights and the head's) once, in the order the matmul kernel reads them, into a buffer of
   m->packed_floats floats (about the size of those matrices: ViT-B 325 MiB, 460 MiB with
   divided's temporal step). Forward passes then read them from there instead of packing
   each one in every product (and every row group of it): the same logits to the bit, a
   little faster (ViT-B: 1-2% at 1 thread, 1-4% at 2). The first call costs more than it
   saves in one pass (ViT-B: 1.2-1.8 s at 1 thread, most of it the system providing the new
   memory; packing again takes 42 ms): it pays off after some 30 to 90 passes with the same
   weights, a server's or a long evaluation's. The packed copy follows the library's own
   changes to the parameters (tsf_sgd_step, tsf_model_backward_sgd,
   tsf_model_init_params: the next forward pass packs again). It cannot see yours: after
   writing m->params yourself, call this again (it packs in place, no new memory) or
   tsf_model_unpack_weights. */
TSFDEF tsf_status tsf_model_pack_weights(tsf_model *m);
/* Drop the packed copy (tsf_model_pack_weights) and its memory. */
TSFDEF void tsf_model_unpack_weights(tsf_model *m);
/* Draw every parameter again, as the original code initialises them, from seed. */
TSFDEF void tsf_model_init_params(tsf_model *m, unsigned long long seed);
/* Draw every parameter again for training from scratch, from seed: the original's
   initialisation, then the blocks' matrices (temporal_fc, local_dense, width_dense
   included) N(0, 1/D), and the position and time embeddings smooth random waves of RMS 0.5
   (a plane wave over the patch grid, a wave over the frames, each channel its own).
   Why: the original's trunc-normal(0.02) is about 0.55/sqrt(D) at ViT-B's D = 768, and the
   original starts from weights trained on images; at a laptop's D = 64 from scratch it
   leaves the attention and MLP branches and the embeddings so weak that SGD takes
   thousands of steps to find position and time, and divided attention stays at chance on
   tasks that need frame order (docs/model.md section 7). */
TSFDEF void tsf_model_init_params_scratch(tsf_model *m, unsigned long long seed);
/* Forward pass. x // (B, C, T, H, W) normalised float input; logits // (B, K) may be NULL
   (they are also in m->acts.logits). Position and time embeddings are resized when the
   clip's patch or frame count differs from the config's. */
TSFDEF tsf_status tsf_model_forward(tsf_model *m, const float *x, int B, int T, int H, int W,
                                    float *logits);
/* Forward pass from 8-bit RGB frames // (B, T, H, W, 3), normalised with the config's
   mean/std and channel order (the model must have C = 3). */
TSFDEF tsf_status tsf_model_forward_u8(tsf_model *m, const unsigned char *rgb, int B, int T, int H,
                                       int W, float *logits);

/* ---- training ---- */
/* Allocate gradients and SGD momentum (zeroed), and activation gradients for the reserved
   shape; from now on forward passes keep every block's activations for the backward pass.
   Call once before tsf_model_loss / tsf_model_backward / tsf_sgd_step. */
TSFDEF tsf_status tsf_model_train_init(tsf_model *m);
/* Forward pass plus the mean cross-entropy over the batch (with m->label_smoothing).
   train = 1 draws stochastic depth (m->drop_path) from m->rng; 0 is plain inference.
   labels // (B) in [0, K). With training set up it also leaves d loss / d logits for
   tsf_model_backward. TSF_ERR_NONFINITE if the loss is NaN or infinite. */
TSFDEF tsf_status tsf_model_loss(tsf_model *m, const float *x, const int *labels, int B, int T,
                                 int H, int W, int train, float *loss);
/* Backward pass of the last tsf_model_loss: ACCUMULATES every parameter's gradient into
   m->grads. dinput // (B, C, T, H, W), if not NULL, receives += d loss / d input.
   TSF_ERR_ARG with cfg.fused_sgd (no room for every gradient: use tsf_model_backward_sgd). */
TSFDEF tsf_status tsf_model_backward(tsf_model *m, float *dinput);
/* Clear the gradients. */
TSFDEF void tsf_model_zero_grad(tsf_model *m);

/* SGD as torch.optim.SGD (dampening 0). tsf_sgd_default() gives the paper's recipe. */
typedef struct tsf_sgd {
    float momentum;                       /* 0.9                                            */
    float weight_decay;                   /* 1e-4, on every parameter as the original does  */
    int nesterov;                         /* 1: Nesterov momentum (the original's default)  */
    int no_decay_embeddings_norms_biases; /* 1: no weight decay on cls/position/time
                                             embeddings, LayerNorms and biases              */
    float clip_norm;                      /* > 0: clip the global gradient norm to this     */
} tsf_sgd;
/* The paper's optimiser: momentum 0.9, Nesterov, weight decay 1e-4 on every parameter. */
TSFDEF tsf_sgd tsf_sgd_default(void);
/* One SGD step with learning rate lr on the gradients accumulated over accum micro-batches
   (they are divided by accum). grad_norm (may be NULL) gets the global gradient norm before
   clipping. TSF_ERR_NONFINITE, with the weights untouched, if a gradient is NaN or Inf.
   TSF_ERR_ARG with cfg.fused_sgd (the gradients are not kept: tsf_model_backward_sgd). */
TSFDEF tsf_status tsf_sgd_step(tsf_model *m, const tsf_sgd *opt, float lr, int accum,
                               float *grad_norm);
/* Backward pass and SGD step in one, for the last tsf_model_loss: block by block, from the
   last, each block's gradient is computed and at once applied with opt's update; the
   embeddings, final LayerNorm and head at the end. The weights, momentum and grad_norm are
   those of tsf_model_zero_grad (before the loss) + tsf_model_backward + tsf_sgd_step(m, opt,
   lr, 1, grad_norm), to the bit. It works in either gradient layout; with cfg.fused_sgd set
   before tsf_model_train_init the gradient buffer holds only one block's gradients (plus the
   tensors outside the blocks), which is what makes it worth having: ViT-B divided keeps
   0.04 GB of gradients instead of 0.49 GB. No accumulation over micro-batches and no clipping
   (opt->clip_norm > 0 is TSF_ERR_ARG: it needs the whole gradient's norm before the first
   update). TSF_ERR_NONFINITE if a block's gradient is NaN or Inf: that block and those
   before it are left alone, but the blocks after it (updated first) have been updated, so
   the model is no longer a step's result: load the last checkpoint. */
TSFDEF tsf_status tsf_model_backward_sgd(tsf_model *m, const tsf_sgd *opt, float lr,
                                         float *grad_norm);
/* Data-parallel training (several processes, each with a share of every batch; the header
   knows no transport: MPI or anything else is the driver's). The gradient buffer: every
   gradient the backward pass accumulates, one contiguous array of *n floats (alignment
   padding included, always zero), laid out as the parameters; with cfg.fused_sgd one
   block's and the tensors outside the blocks. Summing it across processes (then dividing by
   their number) between tsf_model_backward and tsf_sgd_step makes every process take the
   same step; with tsf_model_backward_sgd, m->grad_hook does it range by range (and with
   m->grad_wait, while the backward pass goes on). NULL before tsf_model_train_init. */
TSFDEF float *tsf_model_grad_buffer(tsf_model *m, size_t *n);
/* The share of rank (0 <= rank < world) among n items: [*begin, *begin + *count),
   contiguous, the first n % world ranks one item more. */
TSFDEF void tsf_shard(long long n, int rank, int world, long long *begin, long long *count);
/* Step schedule: base * factors[i] for the last i with epoch >= steps[i]. The paper's:
   steps {0, 11, 14}, factors {1, 0.1, 0.01} over 15 epochs. epoch may be fractional. */
TSFDEF float tsf_lr_steps(float base, float epoch, const float *steps, const float *factors, int n);
/* Linear warm-up over the first warmup steps, then cosine decay to 0 at step total. */
TSFDEF float tsf_lr_cosine(float base, long long step, long long warmup, long long total);

/* Where a training run is, besides the model: saved in and restored from checkpoints. */
typedef struct tsf_train_state {
    long long step;       /* optimiser steps taken                                 */
    long long epoch;      /* epochs completed                                      */
    long long epoch_step; /* batches done in the current epoch                     */
    tsf_rng data_rng;     /* the caller's generator for data order and augmentation */
} tsf_train_state;

/* ------------------------------------------------------------------------------------------
   Weights: safetensors with Hugging Face names (TimesformerForVideoClassification), read
   and written by the library itself. Loading also accepts PyTorch checkpoints (torch.save:
   pytorch_model.bin, .pth, .pyth; see FILE FORMATS), the original facebookresearch names
   (model.blocks.N.attn.qkv.weight, ...), F32/F16/BF16/F64 data, and a Hugging Face model
   folder (config.json + model.safetensors or pytorch_model.bin, sharded or not, and
   preprocessor_config.json).
   ------------------------------------------------------------------------------------------ */

/* Where a load failed and why, in words: "missing tensor classifier.bias", "...". */
typedef struct tsf_error {
    char msg[512];
} tsf_error;

/* Parse a JSON config: Hugging Face config.json keys (image_size, patch_size, num_channels,
   num_frames, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
   attention_type, layer_norm_eps, qkv_bias, id2label / num_labels) or the original code's
   keys, which tsf_model_save and the golden files of tests/golden/ write (img_size, in_chans,
   embed_dim, depth, num_heads, mlp_ratio, num_classes, ln_eps, mean, std, channel_order). Missing
   keys keep cfg's values. */
TSFDEF tsf_status tsf_config_from_json(tsf_config *cfg, const char *json, size_t len,
                                       tsf_error *err);
/* Number of tensors a config's weight file holds (HF layout: per-block tensors separate). */
TSFDEF int tsf_model_num_tensors(const tsf_model *m);
/* Tensor i of the model in file order: its Hugging Face name, shape and data. */
TSFDEF void tsf_model_tensor(const tsf_model *m, int i, char name[96], int *ndim,
                             long long shape[4], float **data);
/* The class name of class k ("" when the model has none). */
TSFDEF const char *tsf_model_label(const tsf_model *m, int k);
/* Set the class names from K strings (NULL clears them). */
TSFDEF tsf_status tsf_model_set_labels(tsf_model *m, const char *const *names);
/* NaN and infinity on request (nothing else looks for them before a loss turns NaN).
   tsf_check_finite: TSF_OK when the n floats at x (an input clip, logits, ...) are all finite,
   else TSF_ERR_NONFINITE with the index of the first bad one in *where (may be NULL). */
TSFDEF tsf_status tsf_check_finite(const float *x, size_t n, size_t *where);
/* Every parameter of m and, once training is set up, its SGD momentum: TSF_ERR_NONFINITE with
   err->msg (err may be NULL) naming the first bad value, e.g. "NaN in classifier.bias[2]". */
TSFDEF tsf_status tsf_model_check_finite(const tsf_model *m, tsf_error *err);

/* Load a model from a weight file in memory: safetensors, or a torch.save checkpoint. cfg may
   be NULL when the file's metadata holds the config (files written by tsf_model_save, and
   the golden files of tests/golden/), or for a torch.save file whose shapes tell it
   (tsf_model_load_file). B is the batch to reserve for. On failure err (may be NULL) names the
   problem, e.g. "missing tensor classifier.bias". */
TSFDEF tsf_status tsf_model_load_memory(tsf_model *m, const void *data, size_t size,
                                        const tsf_config *cfg, int B, tsf_error *err);
#ifndef TSF_NO_STDIO
/* Load a model from a weight file (.safetensors, or a torch.save checkpoint: .bin, .pth,
   .pyth), or from a Hugging Face model folder holding config.json and model.safetensors or
   pytorch_model.bin (or shards and their *.index.json); then the folder's config, id2label
   and preprocessor_config.json are used. */
TSFDEF tsf_status tsf_model_load(tsf_model *m, const char *path, int B, tsf_error *err);
/* Load a model from one weight file of any format the library reads (safetensors, or a
   torch.save checkpoint: .bin, .pth, .pyth) with the config cfg; cfg NULL: the file's own
   (tsf_model_save's metadata), else for a torch.save file one inferred from its tensors'
   shapes, where the heads are D / 64 (ViT-B's, and every released TimeSformer's). */
TSFDEF tsf_status tsf_model_load_file(tsf_model *m, const char *path, const tsf_config *cfg, int B,
                                      tsf_error *err);
/* Read a JSON config file (a Hugging Face config.json) into *cfg, then resolve it. */
TSFDEF tsf_status tsf_config_load(tsf_config *cfg, const char *path, tsf_error *err);
/* Write the model as F32 safetensors with Hugging Face names; __metadata__ carries the config,
   the preprocessing and the class names. Written to a temporary file, then renamed. */
TSFDEF tsf_status tsf_model_save(const tsf_model *m, const char *path, tsf_error *err);
/* Save a training checkpoint: the model file plus SGD momentum ("optimizer.momentum.*"),
   the SGD step count, m->rng, m->drop_path, m->label_smoothing, m->dropout and *ts, written
   atomically (temporary file, fsync, rename): a crash mid-write never loses the previous
   checkpoint. A checkpoint also loads as a model with tsf_model_load (the optimizer state is
   skipped). */
TSFDEF tsf_status tsf_checkpoint_save(const tsf_model *m, const tsf_train_state *ts,
                                      const char *path, tsf_error *err);
/* Load a checkpoint: the model with training set up, momentum and *ts restored, so that
   training resumes bit-identically. */
TSFDEF tsf_status tsf_checkpoint_load(tsf_model *m, tsf_train_state *ts, const char *path, int B,
                                      tsf_error *err);

/* A weight file's tensors by name, for programs that map them to a model themselves
   (tsf train --init-from starts a model from an image ViT this way). Any format
   tsf_model_load reads from one file: safetensors or a torch.save checkpoint. */
typedef struct tsf_weights {
    int count;          /* named entries in the file (a torch state dict's non-tensors too) */
    const char *config; /* the file's own config, JSON text (safetensors __metadata__.config,
                           written by tsf_model_save), or NULL                               */
    void *impl;         /* the reader's state                                                */
} tsf_weights;
/* Open path and list its tensors. alloc_ctx goes to TSF_MALLOC. Every offset and shape is
   checked here; the values are read by tsf_weights_read. */
TSFDEF tsf_status tsf_weights_open(tsf_weights *w, const char *path, void *alloc_ctx,
                                   tsf_error *err);
/* Entry i (0 <= i < count): its name, and its shape // (ndim <= 8). TSF_ERR_FORMAT when it
   holds no float tensor (an integer tensor, a value that is no tensor); then *ndim is 0. */
TSFDEF tsf_status tsf_weights_info(const tsf_weights *w, int i, const char **name, int *ndim,
                                   long long shape[8]);
/* Read entry i as a contiguous float32 tensor into dst (as many floats as its shape holds). */
TSFDEF tsf_status tsf_weights_read(const tsf_weights *w, int i, float *dst, tsf_error *err);
/* Close the file and free the list. */
TSFDEF void tsf_weights_close(tsf_weights *w);
#endif
/* The Hugging Face name (timesformer.encoder.layer.3.attention.attention.qkv.weight) of a
   TimeSformer parameter given by either naming scheme (the original code's
   blocks.3.attn.qkv.weight too; "model." and "module." prefixes dropped). Returns 1 and
   fills out, or 0 when name is no TimeSformer parameter. */
TSFDEF int tsf_param_hf_name(const char *name, char out[96]);
/* The resizing rule the original code uses for position and time embeddings (PyTorch's
   F.interpolate, mode 'nearest'): entry k of a table resized from n_in to n_out entries
   reads entry min(floor(k * r), n_in - 1), r = (float)n_in / n_out and the product in
   float32, which is not always floor(k * n_in / n_out) (docs/model.md section 9). */
TSFDEF int tsf_nearest_index(int k, int n_out, int n_in);

/* ------------------------------------------------------------------------------------------
   Clips and datasets: the clip file format, clips read whole or a few frames at a time, a
   manifest of (path, label) lines with a class-names file, and the loader that turns a clip
   into the model's input with the paper's sampling and augmentation (docs/model.md section 11).

   CLIP FILE FORMAT, version 1. Integers are little-endian; the header is 64 bytes.

       offset  bytes    field
          0      8      magic "TSF_CLIP"
          8      4      u32 format version: 1
         12      4      u32 header size: 64 (the offset of the first pixel)
         16      4      u32 T frames        1 .. TSF_CLIP_MAX_FRAMES
         20      4      u32 H rows          1 .. TSF_CLIP_MAX_SIDE
         24      4      u32 W columns       1 .. TSF_CLIP_MAX_SIDE
         28      4      u32 C channels      1 .. TSF_CLIP_MAX_CHANNELS (the tools write 3: RGB)
         32      4      f32 fps             0 = unknown, else 0 .. TSF_CLIP_MAX_FPS
         36      4      i32 label           -1 = none, else a class index >= 0
         40     24      reserved, all zero
         64   T*H*W*C   u8 pixels: frame after frame; a frame is H rows (top first) of W
                        pixels of C interleaved channels (HWC), in RGB order

   The file is exactly 64 + T*H*W*C bytes, at most TSF_CLIP_MAX_BYTES. Readers check every
   field, do their size arithmetic without overflow, and compare the size with the file's:
   TSF_ERR_FORMAT for a bad magic, version or field, a truncated file or trailing bytes;
   TSF_ERR_OVERFLOW for a clip beyond TSF_CLIP_MAX_BYTES or this machine's size_t;
   TSF_ERR_IO when the system fails (no such file, read error). Where a function takes a
   tsf_error *err (may be NULL), err->msg says what was wrong in words. Clips opened with
   tsf_clip_open() are read a few frames at a time, so a dataset of any size needs memory for
   one frame, never for its clips.

   THE LOADER. tsf_clip_sample() makes the model's input from one clip: x // (C, T, S, S),
   T frames cropped to S x S, normalised v = (pixel/255 - mean[c]) / std[c], where model
   channel c reads the clip's channel c, or channel 2-c when bgr (the SSv2 models).
   view = TSF_VIEW_TRAIN draws a random training sample from rng; view = 0 ..
   tsf_sample_num_views()-1 is test view `view`, which uses no randomness: temporal clip
   view / test_crops, spatial crop view % test_crops. Sum the logits over the views, as the
   original code does.

   Frames, from a clip of n frames:
     dense    (Kinetics) span = stride * T source frames (times fps / target_fps when both
              are known); delta = max(n - span, 0); start = U[0, delta) for training, or
              delta * k / K for test clip k of K (k = 0 starts at the first frame, as the
              code does); frame i = (int)clamp(linspace(start, start + span - 1, T)[i],
              0, n - 1), the linspace in float32 as torch.linspace computes it.
     segment  (SSv2) seg = (n - 1) / T; segment i runs from round(seg * i) to
              round(seg * (i + 1)) (round half to even, like numpy); training takes a frame
              of each segment uniformly, test the middle (lo + hi) / 2. There is one temporal
              view: the test views are the spatial crops.
   Space, for a frame of H x W:
     training the short side becomes s = round(U[scale_min, scale_max]) (inv_uniform:
              s = round(1 / U[1/scale_max, 1/scale_min])), the long side floor(long/short*s)
              (a frame whose short side is s already is left alone); an S x S crop at a
              uniform position (the original's randint never picks the last one); a left-right
              flip with probability 1/2 unless no_flip.
     test     the short side becomes S; crop 0, 1, 2 sit at the start, centre and end of the
              long side (left/centre/right or top/centre/bottom), the centre at
              ceil((long - S) / 2); with test_crops = 1 only the centre.
   Resizing is bilinear without antialiasing, as the original's F.interpolate(mode=
   "bilinear", align_corners=False): output pixel d reads source coordinate
   (d + 0.5) * in/out - 0.5, clamped at 0. Only the pixels inside the crop are computed, and
   a frame that keeps its size passes through exactly.
   Randomness: a training sample draws from rng in this order: the temporal start (dense: 1
   draw; segment: T draws), the short side, the crop's y, its x, then the flip (not drawn with
   no_flip). tsf_sample_seed(seed, epoch, item) gives every (epoch, item) its own stream, so
   the order in which a data loader's threads load items never changes what an item sees.

   MANIFESTS. A dataset is a CSV file of "path,label" lines and a class-names file of one
   name a line (line k, blank lines skipped, names class k). In the manifest, a first line
   "path,label" is a header and skipped, blank lines are skipped, fields are trimmed, and the
   split is at the last comma (paths may contain commas, not newlines). A label is a class
   index (digits only) or, when class names are given, a class name. A relative path is
   relative to the folder of the manifest. Errors are TSF_ERR_FORMAT with err->msg naming
   the line: no comma, an empty field, an unknown label, a duplicate path or class name, an
   empty list, a NUL byte.
   ------------------------------------------------------------------------------------------ */
#define TSF_CLIP_MAGIC "TSF_CLIP"       /* the first 8 bytes of a clip file                  */
#define TSF_CLIP_VERSION 1              /* the format version this library reads and writes  */
#define TSF_CLIP_HEADER_BYTES 64        /* the header's size: the offset of the first pixel  */
#define TSF_CLIP_MAX_FRAMES (1 << 20)   /* T limit: about 9.7 hours at 30 fps                */
#define TSF_CLIP_MAX_SIDE 16384         /* H and W limit                                      */
#define TSF_CLIP_MAX_CHANNELS 4         /* C limit                                            */
#define TSF_CLIP_MAX_FPS 1000000.0f     /* fps limit                                          */
#define TSF_CLIP_MAX_BYTES (1ull << 40) /* file size limit (1 TiB)                           */

/* A clip's header. */
typedef struct tsf_clip_header {
    int T, H, W, C; /* frames, rows, columns, channels                                  */
    float fps;      /* frames per second; 0 = unknown                                   */
    int label;      /* class index; -1 = none                                           */
} tsf_clip_header;

/* An open clip: in memory (pixels) or a file read a few frames at a time (file). */
typedef struct tsf_clip {
    tsf_clip_header h;
    const unsigned char *pixels; /* (T, H, W, C) when the frames are in memory, else NULL  */
    void *file;                  /* the FILE * of tsf_clip_open, else NULL                 */
    unsigned char *owned;        /* what tsf_clip_close frees (tsf_clip_load's buffer)     */
    void *alloc_ctx;             /* handed to TSF_MALLOC / TSF_FREE                        */
} tsf_clip;

/* Check a header's fields: TSF_OK, TSF_ERR_FORMAT (a field out of range), TSF_ERR_OVERFLOW. */
TSFDEF tsf_status tsf_clip_header_check(const tsf_clip_header *h);
/* Parse and check the first 64 of n bytes as a clip header (err may be NULL). */
TSFDEF tsf_status tsf_clip_header_decode(tsf_clip_header *h, const void *bytes, size_t n,
                                         tsf_error *err);
/* Write the 64-byte header of h to out. TSF_ERR_ARG when a field is out of range. */
TSFDEF tsf_status tsf_clip_header_encode(unsigned char *out, const tsf_clip_header *h);
/* Bytes of one frame, H*W*C (0 for an invalid header). */
TSFDEF size_t tsf_clip_frame_bytes(const tsf_clip_header *h);
/* Bytes of the whole file, 64 + T*H*W*C (0 for an invalid header). */
TSFDEF unsigned long long tsf_clip_file_bytes(const tsf_clip_header *h);
/* A clip whose whole file is the n bytes at bytes (no copy; keep them alive). */
TSFDEF tsf_status tsf_clip_view(tsf_clip *clip, const void *bytes, size_t n, tsf_error *err);
/* Copy frames t0 .. t0+n-1 to dst // (n, H, W, C). */
TSFDEF tsf_status tsf_clip_read_frames(tsf_clip *clip, int t0, int n, unsigned char *dst);
/* Close a clip: close its file, free its memory. Safe on a zeroed or closed clip. */
TSFDEF void tsf_clip_close(tsf_clip *clip);

/* How tsf_clip_sample() picks frames. */
enum { TSF_SAMPLE_DENSE = 0, TSF_SAMPLE_SEGMENT = 1 };
/* The view of a training sample (random); test views are 0, 1, .... */
#define TSF_VIEW_TRAIN (-1)

/* How to make model inputs from clips. Zero fields mean the defaults in brackets, the
   paper's Kinetics recipe; SSv2 is sampling = TSF_SAMPLE_SEGMENT, inv_uniform = 1,
   no_flip = 1, bgr = 1. */
typedef struct tsf_sample_opts {
    int frames;            /* T [8]                                                        */
    int size;              /* S: the output is S x S [224]                                 */
    int sampling;          /* TSF_SAMPLE_DENSE [default] or TSF_SAMPLE_SEGMENT             */
    int stride;            /* dense: source frames from one sample to the next [32]        */
    float target_fps;      /* dense: the stride counts frames at this rate [0: don't scale] */
    int scale_min;         /* training short side, from [S*256/224, rounded] ...           */
    int scale_max;         /*   ... to [S*320/224]: 256 .. 320 for S = 224                 */
    int inv_uniform;       /* 1: draw the short side uniformly in 1/side (SSv2)            */
    int no_flip;           /* 1: no horizontal flip (SSv2)                                 */
    int test_clips;        /* K temporal views at test (dense) [1]                        */
    int test_crops;        /* spatial views at test: 1 (centre) or 3 [3]                   */
    float mean[3], std[3]; /* normalisation; all std 0: [0.45, 0.225]                     */
    int bgr;               /* 1: model channel c reads clip channel 2-c                    */
    int channels;          /* > 0: the clip must have this many channels (the model's C):
                              TSF_ERR_FORMAT otherwise, so x is never half filled [0: any] */
    int short_side;        /* test views: the short side is resized to this before the
                              crop [S]; a model's cfg.short_side (preprocessor_config.json) */
} tsf_sample_opts;

/* Where a frame's crop lies: resize to height x width, take S x S at (y, x), maybe mirror. */
typedef struct tsf_crop {
    int height, width; /* the frame's size after the short-side resize                   */
    int y, x;          /* the crop's top-left corner in the resized frame                */
    int flip;          /* 1: mirror the crop left-right                                  */
} tsf_crop;

/* Fill the zero fields of *o with defaults and check it. TSF_ERR_CONFIG if invalid. */
TSFDEF tsf_status tsf_sample_opts_resolve(tsf_sample_opts *o);
/* Number of test views: test_clips * test_crops (segment sampling: test_crops); 0 if invalid. */
TSFDEF int tsf_sample_num_views(const tsf_sample_opts *o);
/* The T source frames idx // (T) of a sample of a clip of n frames at fps (0: unknown). */
TSFDEF tsf_status tsf_sample_frames(int *idx, int n, float fps, const tsf_sample_opts *o,
                                    tsf_rng *rng, int view);
/* The resize and crop of a sample of frames of H x W. */
TSFDEF tsf_status tsf_sample_crop(tsf_crop *crop, int H, int W, const tsf_sample_opts *o,
                                  tsf_rng *rng, int view);
/* Resize (bilinear), crop, flip and normalise one frame // (H, W, C), C <= 3: channel c of
   the result is the S x S plane at out + c * plane_stride. mean, std // (C). */
TSFDEF void tsf_frame_transform(float *out, size_t plane_stride, const unsigned char *frame, int H,
                                int W, int C, const tsf_crop *crop, int S, const float *mean,
                                const float *std, int bgr);
/* One sample of a clip of C <= 3 channels: x // (C, T, S, S). rng: training only (may be
   NULL for test views). Reads only the sampled frames. */
TSFDEF tsf_status tsf_clip_sample(float *x, tsf_clip *clip, const tsf_sample_opts *o, tsf_rng *rng,
                                  int view);
/* A seed of its own for item `index` in epoch `epoch` of a run seeded with seed. */
TSFDEF unsigned long long tsf_sample_seed(unsigned long long seed, long long epoch,
                                          long long index);
/* perm // (n) = a uniformly random permutation of 0 .. n-1 (an epoch's order). */
TSFDEF void tsf_shuffle(int *perm, int n, tsf_rng *rng);

/* Class names: names[k] is class k. */
typedef struct tsf_classes {
    int count;    /* K                                                                   */
    char **names; /* (K) NUL-terminated names                                           */
    int *sorted;  /* (K) class indices in name order, for tsf_classes_find              */
    void *memory; /* one allocation holding all of the above                            */
    void *alloc_ctx;
} tsf_classes;

/* A manifest: clip i is the file paths[i] of class labels[i]. */
typedef struct tsf_manifest {
    int count;    /* number of clips                                                     */
    char **paths; /* (count) relative paths already joined to the manifest's folder       */
    int *labels;  /* (count) class indices                                               */
    int *lines;   /* (count) the manifest line that listed each clip, for messages       */
    void *memory; /* one allocation holding all of the above                            */
    void *alloc_ctx;
} tsf_manifest;

/* Parse a class-names file held in text[0..n). */
TSFDEF tsf_status tsf_classes_parse(tsf_classes *c, const char *text, size_t n, void *alloc_ctx,
                                    tsf_error *err);
/* The index of the class called name, or -1. */
TSFDEF int tsf_classes_find(const tsf_classes *c, const char *name);
/* Free what tsf_classes_parse/load allocated. */
TSFDEF void tsf_classes_free(tsf_classes *c);
/* Parse a manifest held in text[0..n); relative paths are joined to base_dir (may be NULL or
   ""); labels are checked against classes (may be NULL: then any index >= 0 passes). */
TSFDEF tsf_status tsf_manifest_parse(tsf_manifest *m, const char *text, size_t n,
                                     const char *base_dir, const tsf_classes *classes,
                                     void *alloc_ctx, tsf_error *err);
/* Free what tsf_manifest_parse/load allocated. */
TSFDEF void tsf_manifest_free(tsf_manifest *m);

#ifndef TSF_NO_STDIO
/* Read a clip file's header, checking that the file's size matches it. */
TSFDEF tsf_status tsf_clip_read_header(tsf_clip_header *h, const char *path, tsf_error *err);
/* Open a clip file for reading a few frames at a time (the header is checked now). */
TSFDEF tsf_status tsf_clip_open(tsf_clip *clip, const char *path, void *alloc_ctx, tsf_error *err);
/* Read a whole clip file into memory (TSF_MALLOC with alloc_ctx). */
TSFDEF tsf_status tsf_clip_load(tsf_clip *clip, const char *path, void *alloc_ctx, tsf_error *err);
/* Write a clip file: header h, then pixels // (T, H, W, C). No partial file on failure. */
TSFDEF tsf_status tsf_clip_save(const char *path, const tsf_clip_header *h,
                                const unsigned char *pixels);
/* Read a class-names file. */
TSFDEF tsf_status tsf_classes_load(tsf_classes *c, const char *path, void *alloc_ctx,
                                   tsf_error *err);
/* Read a manifest file; relative paths in it are relative to its folder. */
TSFDEF tsf_status tsf_manifest_load(tsf_manifest *m, const char *path, const tsf_classes *classes,
                                    void *alloc_ctx, tsf_error *err);
/* One sample of clip i of a manifest: x // (C, T, S, S) and *label (may be NULL). Opens the
   file, reads the sampled frames, closes it. err->msg (may be NULL) explains clip errors. */
TSFDEF tsf_status tsf_manifest_sample(float *x, int *label, const tsf_manifest *m, int i,
                                      const tsf_sample_opts *o, tsf_rng *rng, int view,
                                      tsf_error *err);
#endif

#ifdef __cplusplus
}
#endif
#endif /* TIMESFORMER_H */

/* ==========================================================================================
   IMPLEMENTATION
   ========================================================================================== */
#if defined(TIMESFORMER_IMPLEMENTATION) && !defined(TIMESFORMER_IMPLEMENTATION_DONE)
#define TIMESFORMER_IMPLEMENTATION_DONE

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h> /* snprintf; FILE only without TSF_NO_STDIO */
#include <stdlib.h>
#include <string.h>
#ifndef TSF_NO_STDIO
#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <fcntl.h>    /* open, to fsync a finished file */
#include <sys/stat.h> /* stat: only regular files are read */
#include <unistd.h>   /* fsync, close */
#endif
#endif

/* ---- options ---------------------------------------------------------------------------- */
#if defined(TSF_MALLOC) && defined(TSF_FREE)
/* both given: use them */
#elif !defined(TSF_MALLOC) && !defined(TSF_FREE)
#include <stdlib.h>
#define TSF_MALLOC(sz, ctx) ((void)(ctx), malloc(sz))
#define TSF_FREE(p, ctx) ((void)(ctx), free(p))
#else
#error "timesformer.h: define both TSF_MALLOC and TSF_FREE, or neither"
#endif

#ifndef TSF_ASSERT
#include <assert.h>
#define TSF_ASSERT(x) assert(x)
#endif

#ifndef TSF_MM_KC
#define TSF_MM_KC 256 /* depth of a packed block: KC x 32 panel of B stays in L1 */
#endif
#ifndef TSF_MM_MC
#define TSF_MM_MC 1024 /* rows of C per parallel task, at most */
#endif
#ifndef TSF_MM_NC
#define TSF_MM_NC 256 /* columns of C per task, at most: a KC x NC block of B stays in L2 */
#endif

/* ---- platform: SIMD selection and OpenMP ------------------------------------------------ */
#if !defined(TSF_NO_SIMD) && defined(__AVX512F__)
#define TSF__AVX512 1
#define TSF_SIMD_NAME "avx512"
#include <immintrin.h>
#elif !defined(TSF_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define TSF__AVX2 1
#define TSF_SIMD_NAME "avx2"
#include <immintrin.h>
#elif !defined(TSF_NO_SIMD) && (defined(__ARM_NEON) || defined(__aarch64__))
#define TSF__NEON 1
#define TSF_SIMD_NAME "neon"
#include <arm_neon.h>
#else
#define TSF_SIMD_NAME "portable"
#endif

/* TSF__OMP_FOR(cond): a parallel for over the next loop when cond holds. It expands to
   nothing without OpenMP, so builds without -fopenmp see no unknown pragmas. */
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
#define TSF__PRAGMA(x) _Pragma(#x)
#define TSF__OMP_FOR(cond) TSF__PRAGMA(omp parallel for schedule(static) if (cond))
/* A parallel region whose threads keep state across the iterations of a loop inside it
   (TSF__OMP_PARALLEL then, before that loop, TSF__OMP_LOOP_STATIC; or the threads take the
   next iteration from a shared counter, TSF__OMP_ATOMIC_CAPTURE, as the matmul drivers do). */
#define TSF__OMP_PARALLEL(cond) TSF__PRAGMA(omp parallel if (cond))
#define TSF__OMP_LOOP_STATIC TSF__PRAGMA(omp for schedule(static))
#include <omp.h>
#define TSF__OMP_THREADS() omp_get_num_threads() /* in the current parallel region */
#define TSF__OMP_THREAD() omp_get_thread_num()
#define TSF__OMP_MAX_THREADS() omp_get_max_threads() /* a parallel region's, from here */
/* Whether a parallel region opened here would run on more than one thread: more than one is
   allowed, and this is not inside a region that cannot nest another. Where it would not, the
   matmul drivers and TSF__PAR_LOOP call their work directly: a region that stays on one thread
   still costs the runtime a team and a wake-up (libgomp 12: 4-5 us a region in a VM, 3.7
   outside any region; a small model's training step had hundreds). */
#define TSF__OMP_SPLITS()                                                                          \
    (omp_get_max_threads() > 1 && omp_get_active_level() < omp_get_max_active_levels())
#define TSF__OMP_ATOMIC_CAPTURE TSF__PRAGMA(omp atomic capture)
/* for (i = 0; i < n; i++) CALL; (one statement): split among the threads when cond holds and
   a region here would get more than one thread (TSF__OMP_SPLITS); otherwise a plain loop,
   which opens no region at all. For the loops that run often on little data. */
#define TSF__PAR_LOOP(cond, i, n, ...)                                                             \
    do {                                                                                           \
        if ((cond) && TSF__OMP_SPLITS()) {                                                         \
            TSF__PRAGMA(omp parallel for schedule(static))                                         \
            for (i = 0; i < (n); i++) __VA_ARGS__;                                                 \
        } else {                                                                                   \
            for (i = 0; i < (n); i++) __VA_ARGS__;                                                 \
        }                                                                                          \
    } while (0)
#else
#define TSF__OMP_FOR(cond)
#define TSF__OMP_PARALLEL(cond)
#define TSF__OMP_LOOP_STATIC
#define TSF__OMP_THREADS() 1
#define TSF__OMP_THREAD() 0
#define TSF__OMP_MAX_THREADS() 1
#define TSF__OMP_SPLITS() 0
#define TSF__OMP_ATOMIC_CAPTURE
#define TSF__PAR_LOOP(cond, i, n, ...)                                                             \
    do {                                                                                           \
        for (i = 0; i < (n); i++) __VA_ARGS__;                                                     \
    } while (0)
#endif
/* A function the compiler must inline (where it can be told): the vector helpers, and a
   kernel body inlined into callers that pass it different constants. */
#if defined(__GNUC__)
#define TSF__FORCE_INLINE static inline __attribute__((always_inline))
#else
#define TSF__FORCE_INLINE static inline
#endif
/* Ask for the cache line at p ahead of its use (where the compiler can be told). */
#if defined(__GNUC__)
#define TSF__PREFETCH(p) __builtin_prefetch(p)
#else
#define TSF__PREFETCH(p) ((void)(p))
#endif

/* Elements an elementwise kernel needs before a second thread is worth waking. */
#define TSF__PAR_WORK 32768.0
/* Multiply-adds a matmul needs before a second thread pays for its wake-up (a few
   microseconds; far more when the cores are contended and OpenMP threads spin). */
#define TSF__PAR_MM_WORK 1048576.0

static int tsf__min(int a, int b) { return a < b ? a : b; }

/* ---- basics ------------------------------------------------------------------------------ */
TSFDEF const char *tsf_version(void) { return TSF_VERSION_STRING; }

TSFDEF const char *tsf_status_string(tsf_status status) {
    switch (status) {
#define TSF__STATUS_CASE(name, text)                                                               \
    case name:                                                                                     \
        return text;
        TSF_STATUS_LIST(TSF__STATUS_CASE)
#undef TSF__STATUS_CASE
    default:
        return "unknown status";
    }
}

TSFDEF const char *tsf_simd_name(void) { return TSF_SIMD_NAME; }

/* ---- random numbers ---------------------------------------------------------------------- */
static unsigned long long tsf__splitmix64(unsigned long long *x) {
    unsigned long long z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

TSFDEF void tsf_rng_seed(tsf_rng *rng, unsigned long long seed) {
    unsigned long long x = seed, a = tsf__splitmix64(&x), b = tsf__splitmix64(&x);
    rng->s[0] = (unsigned int)a;
    rng->s[1] = (unsigned int)(a >> 32);
    rng->s[2] = (unsigned int)b;
    rng->s[3] = (unsigned int)(b >> 32);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) rng->s[0] = 1;
}

TSFDEF unsigned int tsf_rng_u32(tsf_rng *rng) { /* xoshiro128+ */
    unsigned int *s = rng->s, result = s[0] + s[3], t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >> 21);
    return result;
}

TSFDEF float tsf_rng_uniform(tsf_rng *rng) {
    return (float)(tsf_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); /* 24 random bits */
}

TSFDEF float tsf_rng_normal(tsf_rng *rng) {
    float u1 = 1.0f - tsf_rng_uniform(rng); /* (0, 1]: log is finite */
    float u2 = tsf_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

/* ==========================================================================================
   KERNELS, each forward beside its backward
   ========================================================================================== */

/* ---- row helpers ----------------------------------------------------------------------------
   Row kernels walk rows TSF__LANES values at a time through local arrays, which gcc and clang
   turn into SSE2, AVX2, AVX-512 or NEON code; these are the pieces they share. */
#define TSF__LANES 16
#define TSF__SQRT1_2 0.70710678118654752f     /* 1/sqrt(2) */
#define TSF__INV_SQRT_2PI 0.3989422804014327f /* 1/sqrt(2 pi) */

typedef union tsf__bits {
    float f;
    uint32_t u;
    int32_t i;
} tsf__bits;

/* w <= TSF__LANES floats between memory and a local chunk (the rest of it zero): a whole
   chunk is a copy of constant size, which compilers turn into vector moves. */
static void tsf__chunk_load(float *v, const float *x, int w) {
    if (w == TSF__LANES) {
        memcpy(v, x, TSF__LANES * sizeof(float));
    } else {
        memset(v, 0, TSF__LANES * sizeof(float));
        memcpy(v, x, (size_t)w * sizeof(float));
    }
}
/* A chunk to read: x itself when it is whole (read in place, no copy), else the w floats
   copied into v with zeros after them. */
static const float *tsf__chunk(float *v, const float *x, int w) {
    if (w == TSF__LANES) return x;
    tsf__chunk_load(v, x, w);
    return v;
}
static void tsf__chunk_store(float *x, const float *v, int w) {
    if (w == TSF__LANES)
        memcpy(x, v, TSF__LANES * sizeof(float));
    else
        memcpy(x, v, (size_t)w * sizeof(float));
}

/* The sum of TSF__LANES partial sums, in lane order. */
static float tsf__lanes_sum(const float *s) {
    float total = 0.0f;
    int u;
    for (u = 0; u < TSF__LANES; u++) total += s[u];
    return total;
}

/* c ? a : b through the bits, which compilers never turn into a branch. */
static inline float tsf__select(int c, float a, float b) {
    tsf__bits x, y;
    int32_t m = -(int32_t)(c != 0);
    x.f = a, y.f = b;
    x.i = (x.i & m) | (y.i & ~m);
    return x.f;
}

/* ---- what the kernels use from the end of the file ------------------------------------------
   The matrix product (tsf_matmul and its relatives, declared in the API above) and exp and
   erf are machinery: they are defined in the last sections of the file, after the model, so
   that the model reads first. The kernels that run small products inside their own parallel
   loops (the fused attention) keep one thread's packing space on the stack: */
/* The panels must hold any kernel's padding: MR and NR are at most 32. */
#define TSF__PACK_B_FLOATS (TSF_MM_KC * (TSF_MM_NC + 32))
#define TSF__PACK_A_FLOATS (TSF_MM_KC * 32)
/* One thread's part of a product's work space (tsf_matmul_desc.work, tsf__matmul_rows): a
   block of op(A)'s panels of at most TSF_MM_MC of its M rows (and a panel's rounding) by
   TSF_MM_KC. The model's work space has one for each thread a parallel region has (at most
   64), for its products of at most M rows. */
static size_t tsf__work_slot(double M) {
    return (size_t)((M < TSF_MM_MC ? M : TSF_MM_MC) + 32) * TSF_MM_KC;
}
static size_t tsf__work_floats(double M) {
    int threads = TSF__OMP_MAX_THREADS();
    return (size_t)(threads < 1 ? 1 : threads > 64 ? 64 : threads) * tsf__work_slot(M);
}
/* Packing space for one thread, on its stack. b_from says what b holds (B's address, the
   block's first column and depth, its width and depth), so that the tasks of one product
   that a thread runs one after another pack the same block of B once; NULL: nothing yet. */
typedef struct tsf__pack {
    float b[TSF__PACK_B_FLOATS], a[TSF__PACK_A_FLOATS], edge[32 * 32];
    const float *b_from;
    int b_j0, b_p0, b_nc, b_kc;
} tsf__pack;
static void tsf__matmul_serial(tsf__pack *pk, float *C, int ldc, const float *A, int lda,
                               int trans_a, const float *B, int ldb, int trans_b, int M, int N,
                               int K, int accumulate);
/* ... and, for operands packed once and used many times (the attention's keys, the matmul's
   own panels: tsf__pack_rows, tsf__pack_cols_t, tsf__matmul_panels, at the end): */
static void tsf__panel_sizes(int *mr, int *nr);
static void tsf__pack_rows(float *dst, const float *X, int ldx, int n, int K);
static void tsf__pack_cols_t(float *dst, const float *X, int ldx, int n, int K);
static int tsf__matmul_panels(tsf__pack *pk, float *C, int ldc, const float *a, const float *b,
                              int M, int N, int K);
/* a * b + c in one rounding where the target has a fused multiply-add (compilers then emit
   the instruction inline and vectorise it: half the operations of a polynomial), and as two
   operations elsewhere, where fmaf would be a slow library call. The portable build
   (TSF_NO_SIMD) keeps two operations. */
#if !defined(TSF_NO_SIMD) && (defined(__FMA__) || defined(__ARM_FEATURE_FMA))
#define TSF__MADD(a, b, c) fmaf(a, b, c)
#else
#define TSF__MADD(a, b, c) ((a) * (b) + (c))
#endif
/* exp(x) and 1 + erf(x / sqrt 2) as branch-free arithmetic (NUMERIC MACHINERY, at the end). */
static inline float tsf__expf(float x);
static inline float tsf__one_plus_erf(float x);
#if defined(TSF__AVX512) || defined(TSF__AVX2)
/* Whole vectors (TSF__VEC) of TSF__VL floats: tsf__add_or_mul_n below, and GELU's loops,
   which take TSF__VN of them side by side, for n a multiple of TSF__VW (NUMERIC MACHINERY,
   at the end). */
#define TSF__VEC 1
#define TSF__VN 4
#if defined(TSF__AVX512)
#define TSF__VL 16
#else
#define TSF__VL 8
#endif
#define TSF__VW (TSF__VN * TSF__VL)
#if defined(TSF__AVX512)
typedef __m512 tsf__vf; /* a vector of TSF__VL floats; TSF__V(op): its intrinsic op */
typedef __m512i tsf__vi;
#define TSF__V(op) _mm512_##op
#else
typedef __m256 tsf__vf;
typedef __m256i tsf__vi;
#define TSF__V(op) _mm256_##op
#endif
static void tsf__v_gelu(float *out, float *dgelu, const float *inp, int n);
static void tsf__v_gelu_grad(float *dinp, const float *dout, const float *inp, int n,
                             int accumulate);
#endif

/* out // (n) = a + b (add), else a * b, elementwise; out may be a or b. With AVX on whole
   vectors: as a plain loop that writes out, gcc -O2 leaves it scalar (it adds no runtime
   alias checks), 5-8 times slower. */
static void tsf__add_or_mul_n(float *out, const float *a, const float *b, size_t n, int add) {
    size_t i = 0;
#if defined(TSF__VEC)
    for (; i + TSF__VL <= n; i += TSF__VL) {
        tsf__vf x = TSF__V(loadu_ps)(a + i), y = TSF__V(loadu_ps)(b + i);
        TSF__V(storeu_ps)(out + i, add ? TSF__V(add_ps)(x, y) : TSF__V(mul_ps)(x, y));
    }
#endif
    for (; i < n; i++) out[i] = add ? a[i] + b[i] : a[i] * b[i];
}

/* ---- linear ------------------------------------------------------------------------------ */
/* The model's linear layers pass its products' work space (tsf_matmul_desc.work, in
   m->acts.mm_work); the public functions none. */
typedef struct tsf__work {
    float *p;
    size_t n;
} tsf__work;
static const tsf__work tsf__no_work = {NULL, 0};

/* C // (M, N) (+)= op(A) . op(B) (+ bias), natural strides, with work space w: the model's
   products, and (without) tsf_matmul_nt, _nn and _tn. */
static tsf_matmul_desc tsf__desc(float *C, const float *A, const float *B, int M, int N, int K,
                                 int trans_a, int trans_b, int accumulate, const float *bias,
                                 tsf__work w) {
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.trans_a = trans_a;
    d.B = B, d.trans_b = trans_b;
    d.C = C, d.accumulate = accumulate, d.bias = bias;
    d.work = w.p, d.work_floats = w.n;
    return d;
}
static void tsf__matmul_w(float *C, const float *A, const float *B, int M, int N, int K,
                          int trans_a, int trans_b, int accumulate, const float *bias,
                          tsf__work w) {
    tsf_matmul_desc d = tsf__desc(C, A, B, M, N, K, trans_a, trans_b, accumulate, bias, w);
    tsf_matmul(&d);
}

/* wpack: the weight packed already (tsf_matmul_pack_b, trans_b; tsf_model_pack_weights), or
   NULL: the same bits either way. */
static void tsf__linear_forward(float *out, const float *inp, const float *weight,
                                const float *wpack, const float *bias, int M, int IN, int OUT,
                                tsf__work w) {
    /* out // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T, then + bias // (OUT) */
    tsf_matmul_desc d = tsf__desc(out, inp, weight, M, OUT, IN, 0, 1, 0, bias, w);
    d.packed_b = wpack;
    tsf_matmul(&d);
}
TSFDEF void tsf_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                               int M, int IN, int OUT) {
    tsf__linear_forward(out, inp, weight, NULL, bias, M, IN, OUT, tsf__no_work);
}

/* Column sums of x // (M, N) added to out // (N). Parallel over blocks of TSF__COLSUM_V
   vectors of columns: four independent vectors of sums, so that each add need not wait for
   the one before (with one vector a block, three times slower: 81 against 28 us for a small
   model's three bias gradients at AVX2). Each column is summed by one thread in row order, so
   the result does not depend on the threads. */
#define TSF__COLSUM_V 4
static void tsf__colsum_block(float *out, const float *x, int M, int N, long jb) { /* block jb */
    int j0 = (int)jb * TSF__COLSUM_V * TSF__LANES, j, m, k;
    float acc[TSF__COLSUM_V * TSF__LANES] = {0}, row[TSF__LANES];
    for (m = 0; m < M; m++)
        for (k = 0; k < TSF__COLSUM_V && j0 + k * TSF__LANES < N; k++) {
            int c = j0 + k * TSF__LANES, w = tsf__min(TSF__LANES, N - c);
            const float *r = tsf__chunk(row, x + (size_t)m * N + c, w);
            for (j = 0; j < TSF__LANES; j++) acc[k * TSF__LANES + j] += r[j];
        }
    for (j = 0; j < TSF__COLSUM_V * TSF__LANES && j0 + j < N; j++) out[j0 + j] += acc[j];
}
static void tsf__colsum_add(float *out, const float *x, int M, int N) {
    long jb, blocks = (N + TSF__COLSUM_V * TSF__LANES - 1) / (TSF__COLSUM_V * TSF__LANES);
    TSF__PAR_LOOP((double)M * N > TSF__PAR_WORK, jb, blocks, tsf__colsum_block(out, x, M, N, jb));
}

/* The backward kernels' input gradient, for the model's own calls: TSF__ADD adds to it (+=,
   what the public functions do: a tensor used twice collects both gradients), TSF__SET
   writes it (=: the buffer is fresh, and no clearing pass is needed). Weight gradients are
   always added to. */
#define TSF__SET 0
#define TSF__ADD 1

static void tsf__linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, int M, int IN, int OUT,
                                 int add, tsf__work w) {
    /* dinp // (M, IN) (+)= dout // (M, OUT) . weight // (OUT, IN) */
    if (dinp) tsf__matmul_w(dinp, dout, weight, M, IN, OUT, 0, 0, add, NULL, w);
    /* dweight // (OUT, IN) += dout^T . inp // (M, IN) */
    if (dweight) tsf__matmul_w(dweight, dout, inp, OUT, IN, M, 1, 0, 1, NULL, w);
    /* dbias // (OUT) += sum over rows of dout */
    if (dbias) tsf__colsum_add(dbias, dout, M, OUT);
}
TSFDEF void tsf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int M, int IN, int OUT) {
    tsf__linear_backward(dinp, dweight, dbias, dout, inp, weight, M, IN, OUT, TSF__ADD,
                         tsf__no_work);
}

/* ---- layernorm --------------------------------------------------------------------------- */
/* Rows are walked TSF__LANES values at a time (sums kept in TSF__LANES partial sums), so that
   compilers vectorise them. */
static void tsf__layernorm_row(float *out, float *mean, float *rstd, const float *inp,
                               const float *weight, const float *bias, int D, float eps, long m) {
    const float *x = inp + (size_t)m * D; /* row m */
    float *o = out + (size_t)m * D, v[TSF__LANES], wv[TSF__LANES], bv[TSF__LANES];
    float s[TSF__LANES] = {0}, q[TSF__LANES] = {0}, mu, rs;
    int j, u, w, full = D / TSF__LANES * TSF__LANES;
    for (j = 0; j < full; j += TSF__LANES) /* the mean: whole chunks read in place */
        for (u = 0; u < TSF__LANES; u++) s[u] += x[j + u];
    for (; j < D; j += TSF__LANES) {
        tsf__chunk_load(v, x + j, tsf__min(TSF__LANES, D - j));
        for (u = 0; u < TSF__LANES; u++) s[u] += v[u];
    }
    mu = tsf__lanes_sum(s) / (float)D;
    for (j = 0; j < full; j += TSF__LANES) /* the biased variance, as PyTorch */
        for (u = 0; u < TSF__LANES; u++) q[u] += (x[j + u] - mu) * (x[j + u] - mu);
    for (; j < D; j += TSF__LANES) {
        tsf__chunk_load(v, x + j, w = tsf__min(TSF__LANES, D - j));
        for (u = w; u < TSF__LANES; u++) v[u] = mu; /* past the row: no contribution */
        for (u = 0; u < TSF__LANES; u++) q[u] += (v[u] - mu) * (v[u] - mu);
    }
    rs = 1.0f / sqrtf(tsf__lanes_sum(q) / (float)D + eps);
    for (j = 0; j < full; j += TSF__LANES) { /* out = (x - mean) * rstd * weight + bias */
        for (u = 0; u < TSF__LANES; u++)     /* into v: written to o, gcc -O2 left it scalar */
            v[u] = (x[j + u] - mu) * rs * weight[j + u] + bias[j + u];
        memcpy(o + j, v, sizeof v);
    }
    for (; j < D; j += TSF__LANES) {
        w = tsf__min(TSF__LANES, D - j);
        tsf__chunk_load(v, x + j, w);
        tsf__chunk_load(wv, weight + j, w);
        tsf__chunk_load(bv, bias + j, w);
        for (u = 0; u < TSF__LANES; u++) v[u] = (v[u] - mu) * rs * wv[u] + bv[u];
        tsf__chunk_store(o + j, v, w);
    }
    if (mean) mean[m] = mu;
    if (rstd) rstd[m] = rs;
}
TSFDEF void tsf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int M, int D, float eps) {
    long m;
    TSF__PAR_LOOP((double)M * D > TSF__PAR_WORK, m, M,
                  tsf__layernorm_row(out, mean, rstd, inp, weight, bias, D, eps, m));
}

/* Row m of dinp: with xhat = (x - mean) * rstd and g = dout * weight,
   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). Rows are independent. */
static void tsf__layernorm_dx_row(float *dinp, const float *dout, const float *inp,
                                  const float *weight, const float *mean, const float *rstd, int D,
                                  int add, long m) {
    const float *x = inp + (size_t)m * D, *dy = dout + (size_t)m * D;
    float *dx = dinp + (size_t)m * D, mu = mean[m], rs = rstd[m], gmean, gxmean;
    float xv[TSF__LANES], dv[TSF__LANES], wv[TSF__LANES], g[TSF__LANES];
    float s[TSF__LANES] = {0}, sx[TSF__LANES] = {0};
    int j, u, w;
    for (j = 0; j < D; j += TSF__LANES) { /* past the row dout is 0: nothing added */
        const float *xc, *dc, *wc;
        w = tsf__min(TSF__LANES, D - j);
        xc = tsf__chunk(xv, x + j, w), dc = tsf__chunk(dv, dy + j, w);
        wc = tsf__chunk(wv, weight + j, w);
        for (u = 0; u < TSF__LANES; u++) {
            g[u] = dc[u] * wc[u];
            s[u] += g[u];
            sx[u] += g[u] * (xc[u] - mu) * rs;
        }
    }
    gmean = tsf__lanes_sum(s) / (float)D;
    gxmean = tsf__lanes_sum(sx) / (float)D;
    for (j = 0; j < D; j += TSF__LANES) {
        const float *xc, *dc, *wc;
        w = tsf__min(TSF__LANES, D - j);
        xc = tsf__chunk(xv, x + j, w), dc = tsf__chunk(dv, dy + j, w);
        wc = tsf__chunk(wv, weight + j, w);
        if (add)
            tsf__chunk_load(g, dx + j, w);
        else
            memset(g, 0, sizeof g);
        for (u = 0; u < TSF__LANES; u++)
            g[u] += rs * (dc[u] * wc[u] - gmean - (xc[u] - mu) * rs * gxmean);
        tsf__chunk_store(dx + j, g, w);
    }
}
/* dweight += sum_m dout * xhat, dbias += sum_m dout, over all M rows in row order, for the
   columns of block ib (TSF__COLSUM_V vectors of them, independent sums, as tsf__colsum_block). */
static void tsf__layernorm_dwb_block(float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *mean, const float *rstd, int M,
                                     int D, long ib) {
    int i0 = (int)ib * TSF__COLSUM_V * TSF__LANES, u, mm, k;
    float dw[TSF__COLSUM_V * TSF__LANES] = {0}, db[TSF__COLSUM_V * TSF__LANES] = {0};
    float xv[TSF__LANES], dv[TSF__LANES];
    for (mm = 0; mm < M; mm++) {
        float mu = mean[mm], rs = rstd[mm];
        for (k = 0; k < TSF__COLSUM_V && i0 + k * TSF__LANES < D; k++) {
            int c = i0 + k * TSF__LANES, w = tsf__min(TSF__LANES, D - c);
            const float *xc = tsf__chunk(xv, inp + (size_t)mm * D + c, w);
            const float *dc = tsf__chunk(dv, dout + (size_t)mm * D + c, w);
            float *dwk = dw + k * TSF__LANES, *dbk = db + k * TSF__LANES;
            for (u = 0; u < TSF__LANES; u++) {
                dwk[u] += dc[u] * (xc[u] - mu) * rs;
                dbk[u] += dc[u];
            }
        }
    }
    for (u = 0; u < TSF__COLSUM_V * TSF__LANES && i0 + u < D; u++) {
        if (dweight) dweight[i0 + u] += dw[u];
        if (dbias) dbias[i0 + u] += db[u];
    }
}
static void tsf__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, const float *mean,
                                    const float *rstd, int M, int D, int add) {
    long m, ib, blocks = (D + TSF__COLSUM_V * TSF__LANES - 1) / (TSF__COLSUM_V * TSF__LANES);
    if (dinp) /* rows */
        TSF__PAR_LOOP((double)M * D > TSF__PAR_WORK, m, M,
                      tsf__layernorm_dx_row(dinp, dout, inp, weight, mean, rstd, D, add, m));
    /* dweight and dbias: a reduction over rows, so it is split over columns to keep each sum
       in one thread and in row order */
    if (dweight || dbias)
        TSF__PAR_LOOP((double)M * D > TSF__PAR_WORK, ib, blocks,
                      tsf__layernorm_dwb_block(dweight, dbias, dout, inp, mean, rstd, M, D, ib));
}

TSFDEF void tsf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int M, int D) {
    tsf__layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, D, TSF__ADD);
}

/* ---- gelu -------------------------------------------------------------------------------- */
static inline float tsf__gelu(float x) { return 0.5f * x * tsf__one_plus_erf(x); }
/* d/dx 0.5 x (1 + erf(x/sqrt2)) = 0.5 (1 + erf(x/sqrt2)) + x * pdf(x) */
static inline float tsf__gelu_grad_from(float x, float one_plus_erf) { /* given 1 + erf */
    /* one rounding either way (0.5 times a float is exact), whatever the compiler contracts */
    return TSF__MADD(0.5f, one_plus_erf, x * TSF__INV_SQRT_2PI * tsf__expf(-0.5f * x * x));
}
static inline float tsf__gelu_grad(float x) { return tsf__gelu_grad_from(x, tsf__one_plus_erf(x)); }

/* GELU's kernels take four chunks of TSF__LANES values a loop and write each step for all
   four: erf's polynomial and exp are one long chain of dependent operations, and four
   independent chains keep the vector units busy where one would wait on each result (twice
   as fast with 8-float AVX2 vectors; the same with AVX-512's 16). */
#define TSF__GELU_W (4 * TSF__LANES)

/* out // (n) = GELU(inp); dgelu // (n), if not NULL, gets GELU'(inp) too: all that backward
   needs, which then costs a product instead of erf and two exps (one of them shared here
   with GELU). The same operations as tsf__gelu and tsf__gelu_grad, so the same bits.
   Through local arrays: nothing aliased, so compilers vectorise it. out and dgelu may alias
   inp. */
static void tsf__gelu_n(float *out, float *dgelu, const float *inp, int n) {
    float v[TSF__GELU_W] = {0}, g[TSF__GELU_W], e[TSF__GELU_W];
    int j = 0, u, w;
#if defined(TSF__VEC) /* whole vectors in registers; the rest below */
    j = n / TSF__VW * TSF__VW;
    tsf__v_gelu(out, dgelu, inp, j);
#endif
    for (; j < n; j += TSF__GELU_W) {
        w = tsf__min(TSF__GELU_W, n - j);
        memcpy(v, inp + j, (size_t)w * sizeof(float));
        if (dgelu) {
            for (u = 0; u < TSF__LANES; u++) { /* four chains: 1 + erf */
                e[u] = tsf__one_plus_erf(v[u]);
                e[u + TSF__LANES] = tsf__one_plus_erf(v[u + TSF__LANES]);
                e[u + 2 * TSF__LANES] = tsf__one_plus_erf(v[u + 2 * TSF__LANES]);
                e[u + 3 * TSF__LANES] = tsf__one_plus_erf(v[u + 3 * TSF__LANES]);
            }
            for (u = 0; u < TSF__GELU_W; u++) g[u] = 0.5f * v[u] * e[u]; /* tsf__gelu */
            for (u = 0; u < TSF__LANES; u++) { /* four chains: tsf__gelu_grad */
                e[u] = tsf__gelu_grad_from(v[u], e[u]);
                e[u + TSF__LANES] = tsf__gelu_grad_from(v[u + TSF__LANES], e[u + TSF__LANES]);
                e[u + 2 * TSF__LANES] =
                    tsf__gelu_grad_from(v[u + 2 * TSF__LANES], e[u + 2 * TSF__LANES]);
                e[u + 3 * TSF__LANES] =
                    tsf__gelu_grad_from(v[u + 3 * TSF__LANES], e[u + 3 * TSF__LANES]);
            }
            memcpy(dgelu + j, e, (size_t)w * sizeof(float));
            memcpy(out + j, g, (size_t)w * sizeof(float));
            continue;
        }
        for (u = 0; u < TSF__LANES; u++) { /* four chains */
            g[u] = tsf__gelu(v[u]);
            g[u + TSF__LANES] = tsf__gelu(v[u + TSF__LANES]);
            g[u + 2 * TSF__LANES] = tsf__gelu(v[u + 2 * TSF__LANES]);
            g[u + 3 * TSF__LANES] = tsf__gelu(v[u + 3 * TSF__LANES]);
        }
        memcpy(out + j, g, (size_t)w * sizeof(float));
    }
}

/* dinp // (n) (+)= dout * GELU'(inp): accumulate, or overwrite (dinp may then alias dout). */
static void tsf__gelu_grad_n(float *dinp, const float *dout, const float *inp, int n,
                             int accumulate) {
    float v[TSF__GELU_W] = {0}, dy[TSF__GELU_W] = {0}, g[TSF__GELU_W];
    int j = 0, u, w;
#if defined(TSF__VEC)
    j = n / TSF__VW * TSF__VW;
    tsf__v_gelu_grad(dinp, dout, inp, j, accumulate);
#endif
    for (; j < n; j += TSF__GELU_W) {
        w = tsf__min(TSF__GELU_W, n - j);
        memcpy(v, inp + j, (size_t)w * sizeof(float));
        memcpy(dy, dout + j, (size_t)w * sizeof(float));
        for (u = 0; u < TSF__LANES; u++) { /* four chains */
            g[u] = tsf__gelu_grad(v[u]) * dy[u];
            g[u + TSF__LANES] = tsf__gelu_grad(v[u + TSF__LANES]) * dy[u + TSF__LANES];
            g[u + 2 * TSF__LANES] = tsf__gelu_grad(v[u + 2 * TSF__LANES]) * dy[u + 2 * TSF__LANES];
            g[u + 3 * TSF__LANES] = tsf__gelu_grad(v[u + 3 * TSF__LANES]) * dy[u + 3 * TSF__LANES];
        }
        if (accumulate) {
            memcpy(v, dinp + j, (size_t)w * sizeof(float));
            for (u = 0; u < TSF__GELU_W; u++) g[u] = v[u] + g[u];
        }
        memcpy(dinp + j, g, (size_t)w * sizeof(float));
    }
}

/* Elementwise kernels run in blocks of this many values, a thread's unit of work. */
#define TSF__EW_BLOCK 4096

TSFDEF void tsf_gelu_forward(float *out, const float *inp, size_t n) {
    long b;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK / 8)
    for (b = 0; b < (long)((n + TSF__EW_BLOCK - 1) / TSF__EW_BLOCK); b++) {
        size_t i = (size_t)b * TSF__EW_BLOCK;
        tsf__gelu_n(out + i, NULL, inp + i, (int)(n - i < TSF__EW_BLOCK ? n - i : TSF__EW_BLOCK));
    }
}

TSFDEF void tsf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    long b;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK / 8)
    for (b = 0; b < (long)((n + TSF__EW_BLOCK - 1) / TSF__EW_BLOCK); b++) {
        size_t i = (size_t)b * TSF__EW_BLOCK;
        tsf__gelu_grad_n(dinp + i, dout + i, inp + i,
                         (int)(n - i < TSF__EW_BLOCK ? n - i : TSF__EW_BLOCK), 1);
    }
}

/* ---- linear + GELU ----------------------------------------------------------------------- */
/* pre gets fc's output, or with deriv (and pre) GELU' at it (see tsf__gelu_n). */
static void tsf__linear_gelu_forward(float *out, float *pre, const float *inp, const float *weight,
                                     const float *wpack, const float *bias, int M, int IN, int OUT,
                                     int deriv, tsf__work w) {
    float *y = pre ? pre : out; /* the product lands in pre, or in out (inference) */
    long m;
    /* y // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T + bias: tsf_linear_forward */
    tsf__linear_forward(y, inp, weight, wpack, bias, M, IN, OUT, w);
    /* out = GELU(y) */
    TSF__OMP_FOR((double)M * OUT > TSF__PAR_WORK / 8)
    for (m = 0; m < M; m++)
        tsf__gelu_n(out + (size_t)m * OUT, deriv && pre ? y + (size_t)m * OUT : NULL,
                    y + (size_t)m * OUT, OUT);
}
TSFDEF void tsf_linear_gelu_forward(float *out, float *pre, const float *inp, const float *weight,
                                    const float *bias, int M, int IN, int OUT) {
    tsf__linear_gelu_forward(out, pre, inp, weight, NULL, bias, M, IN, OUT, 0, tsf__no_work);
}

/* deriv: pre holds GELU' at fc's output already (tsf__linear_gelu_forward's deriv). */
static void tsf__linear_gelu_backward(float *dinp, float *dweight, float *dbias, float *dpre,
                                      const float *dout, const float *pre, const float *inp,
                                      const float *weight, int M, int IN, int OUT, int add,
                                      int deriv, tsf__work w) {
    long m;
    /* dpre = dout * GELU'(pre), then the linear layer's backward from dpre */
    TSF__OMP_FOR((double)M * OUT > TSF__PAR_WORK / 8)
    for (m = 0; m < M; m++) {
        size_t o = (size_t)m * OUT;
        if (deriv) /* the product tsf__gelu_grad_n takes, in the same order */
            tsf__add_or_mul_n(dpre + o, pre + o, dout + o, (size_t)OUT, 0);
        else
            tsf__gelu_grad_n(dpre + o, dout + o, pre + o, OUT, 0);
    }
    tsf__linear_backward(dinp, dweight, dbias, dpre, inp, weight, M, IN, OUT, add, w);
}
TSFDEF void tsf_linear_gelu_backward(float *dinp, float *dweight, float *dbias, float *dpre,
                                     const float *dout, const float *pre, const float *inp,
                                     const float *weight, int M, int IN, int OUT) {
    tsf__linear_gelu_backward(dinp, dweight, dbias, dpre, dout, pre, inp, weight, M, IN, OUT,
                              TSF__ADD, 0, tsf__no_work);
}

/* ---- softmax ----------------------------------------------------------------------------- */
/* out // (n) = softmax(scale * inp), max-subtracted. out may alias inp. */
static void tsf__softmax_row(float *out, const float *inp, int n, float scale) {
    float mx = -INFINITY, sum = 0.0f, inv;
    int i;
    for (i = 0; i < n; i++) mx = inp[i] * scale > mx ? inp[i] * scale : mx;
    for (i = 0; i < n; i++) {
        out[i] = expf(inp[i] * scale - mx);
        sum += out[i];
    }
    inv = 1.0f / sum;
    for (i = 0; i < n; i++) out[i] *= inv;
}

/* dinp // (n) (+)= scale * p * (dp - <dp, p>); with accumulate == 0 it is overwritten, and
   dinp may then alias dp. */
static void tsf__softmax_row_backward(float *dinp, const float *dp, const float *p, int n,
                                      float scale, int accumulate) {
    float dot = 0.0f;
    int i;
    for (i = 0; i < n; i++) dot += dp[i] * p[i];
    for (i = 0; i < n; i++) {
        float g = scale * p[i] * (dp[i] - dot);
        dinp[i] = accumulate ? dinp[i] + g : g;
    }
}

TSFDEF void tsf_softmax_forward(float *out, const float *inp, int M, int N) {
    long m;
    TSF__OMP_FOR((double)M * N > TSF__PAR_WORK / 4)
    for (m = 0; m < M; m++) tsf__softmax_row(out + (size_t)m * N, inp + (size_t)m * N, N, 1.0f);
}

TSFDEF void tsf_softmax_backward(float *dinp, const float *dout, const float *out, int M, int N) {
    long m;
    TSF__OMP_FOR((double)M * N > TSF__PAR_WORK / 4)
    for (m = 0; m < M; m++) {
        size_t o = (size_t)m * N;
        tsf__softmax_row_backward(dinp + o, dout + o, out + o, N, 1.0f, 1);
    }
}

/* ---- attention --------------------------------------------------------------------------- */
/* A batched product over the S sequences and NH heads of an attention call: item (s, g)
   of an operand sits at base + s*seq_stride + g*head_stride. */
static void tsf__attn_matmul(float *C, int ldc, size_t sc, size_t gc, const float *A, int lda,
                             size_t sa, size_t ga, int trans_a, const float *B, int ldb, size_t sb,
                             size_t gb, int trans_b, int M, int N, int K, int S, int NH,
                             int accumulate) {
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.lda = lda, d.trans_a = trans_a, d.stride_a = sa, d.group_stride_a = ga;
    d.B = B, d.ldb = ldb, d.trans_b = trans_b, d.stride_b = sb, d.group_stride_b = gb;
    d.C = C, d.ldc = ldc, d.stride_c = sc, d.group_stride_c = gc;
    d.accumulate = accumulate, d.count = S, d.group = NH;
    tsf_matmul(&d);
}

/* att // (S, NH, SL, SL) = the attention probabilities softmax((q.k^T) * HS^-0.5). */
static void tsf__attention_probs(float *att, const float *qkv, int S, int SL, int D, int NH) {
    int HS = D / NH;
    size_t sq = (size_t)SL * 3 * D, sl2 = (size_t)SL * SL;
    float scale = 1.0f / sqrtf((float)HS);
    long r;
    TSF_ASSERT(NH > 0 && D % NH == 0);
    /* att[s][g] // (SL, SL) = q[s][g] // (SL, HS) . k[s][g] ^T, raw dot products */
    tsf__attn_matmul(att, SL, NH * sl2, sl2, qkv, 3 * D, sq, HS, 0, qkv + D, 3 * D, sq, HS, 1, SL,
                     SL, HS, S, NH, 0);
    /* att = softmax(att * scale) over each row */
    TSF__OMP_FOR((double)S * NH * sl2 > TSF__PAR_WORK / 4)
    for (r = 0; r < (long)S * NH * SL; r++)
        tsf__softmax_row(att + (size_t)r * SL, att + (size_t)r * SL, SL, scale);
}

TSFDEF void tsf_attention_forward(float *out, float *att, const float *qkv, int S, int SL, int D,
                                  int NH) {
    int HS = D / NH;
    size_t sq = (size_t)SL * 3 * D, sl2 = (size_t)SL * SL, so = (size_t)SL * D;
    tsf__attention_probs(att, qkv, S, SL, D, NH);
    /* out[s][:, g*HS..] // (SL, HS) = att[s][g] . v[s][g] // (SL, HS) */
    tsf__attn_matmul(out, D, so, HS, att, SL, NH * sl2, sl2, 0, qkv + 2 * D, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 0);
}

TSFDEF void tsf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, int S, int SL, int D, int NH) {
    int HS = D / NH;
    size_t sq = (size_t)SL * 3 * D, sl2 = (size_t)SL * SL, so = (size_t)SL * D;
    float scale = 1.0f / sqrtf((float)HS);
    long r;
    TSF_ASSERT(NH > 0 && D % NH == 0);
    /* datt = dout[s][:, g] // (SL, HS) . v ^T */
    tsf__attn_matmul(datt, SL, NH * sl2, sl2, dout, D, so, HS, 0, qkv + 2 * D, 3 * D, sq, HS, 1, SL,
                     SL, HS, S, NH, 0);
    /* dv += att ^T . dout */
    tsf__attn_matmul(dqkv + 2 * D, 3 * D, sq, HS, att, SL, NH * sl2, sl2, 1, dout, D, so, HS, 0, SL,
                     HS, SL, S, NH, 1);
    /* datt := d(raw scores) = scale * att * (datt - <datt, att>), in place */
    TSF__OMP_FOR((double)S * NH * sl2 > TSF__PAR_WORK / 4)
    for (r = 0; r < (long)S * NH * SL; r++) {
        size_t o = (size_t)r * SL;
        tsf__softmax_row_backward(datt + o, datt + o, att + o, SL, scale, 0);
    }
    /* dq += datt . k */
    tsf__attn_matmul(dqkv, 3 * D, sq, HS, datt, SL, NH * sl2, sl2, 0, qkv + D, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 1);
    /* dk += datt ^T . q */
    tsf__attn_matmul(dqkv + D, 3 * D, sq, HS, datt, SL, NH * sl2, sl2, 1, qkv, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 1);
}

/* ---- fused attention ---------------------------------------------------------------------- */
/* Tiles of the fused attention: query rows (a multiple of every micro-kernel's MR, so row
   panels are full) and keys. A thread keeps one or two BQ x BK tiles on its stack, beside
   the matmul's packing space. */
#define TSF__ATT_BQ 96
#define TSF__ATT_BK 256

/* max(m, x[j] * scale) over j < n, in TSF__LANES partial maxima (compilers vectorise it). */
static float tsf__scaled_max(const float *x, int n, float scale, float m) {
    float mx[TSF__LANES];
    int j, u;
    for (u = 0; u < TSF__LANES; u++) mx[u] = m;
    for (j = 0; j + TSF__LANES <= n; j += TSF__LANES)
        for (u = 0; u < TSF__LANES; u++)
            mx[u] = x[j + u] * scale > mx[u] ? x[j + u] * scale : mx[u];
    for (; j < n; j++) m = x[j] * scale > m ? x[j] * scale : m;
    for (u = 0; u < TSF__LANES; u++) m = mx[u] > m ? mx[u] : m;
    return m;
}

/* x // (n) = exp(x * scale - m), in place; returns the sum (in TSF__LANES partial sums).
   Four chunks a loop where the row has them, each step written for all four: exp is a chain
   of dependent operations, and four independent ones keep the vector units busy (as
   GELU's kernels do). */
static float tsf__exp_shifted(float *x, int n, float scale, float m) {
    float sum[TSF__LANES] = {0}, total = 0.0f, e[4 * TSF__LANES];
    int j, u;
    for (j = 0; j + 4 * TSF__LANES <= n; j += 4 * TSF__LANES) {
        for (u = 0; u < TSF__LANES; u++) {
            e[u] = tsf__expf(x[j + u] * scale - m);
            e[u + TSF__LANES] = tsf__expf(x[j + u + TSF__LANES] * scale - m);
            e[u + 2 * TSF__LANES] = tsf__expf(x[j + u + 2 * TSF__LANES] * scale - m);
            e[u + 3 * TSF__LANES] = tsf__expf(x[j + u + 3 * TSF__LANES] * scale - m);
        }
        for (u = 0; u < TSF__LANES; u++) /* the sums in chunk order, as below */
            sum[u] += e[u], sum[u] += e[u + TSF__LANES], sum[u] += e[u + 2 * TSF__LANES],
                sum[u] += e[u + 3 * TSF__LANES];
        memcpy(x + j, e, sizeof e);
    }
    for (; j + TSF__LANES <= n; j += TSF__LANES)
        for (u = 0; u < TSF__LANES; u++) {
            x[j + u] = tsf__expf(x[j + u] * scale - m);
            sum[u] += x[j + u];
        }
    for (; j < n; j++) total += x[j] = tsf__expf(x[j] * scale - m);
    for (u = 0; u < TSF__LANES; u++) total += sum[u];
    return total;
}

/* The direct path, for short sequences (SL <= TSF__ATT_SHORT: a TimeSformer's time step,
   small models' frames) and for longer ones with narrow heads (SL <= TSF__ATT_LONG, HS <=
   TSF__ATT_NARROW: a small model's joint attention, whose packed tiles, a few values deep,
   would be mostly edge): one sequence and head at a time in local arrays, blocks of up to
   TSF__ATT_SHORT queries against every key, with TSF__ATT_W queries side by side in the
   vector lanes, so that the products of a few rows (8 x 8 x 64, say) run as plain vector
   loops instead of packed tiles. Padded lanes (queries past the block) hold zeros and are
   never stored. */
/* Queries (or keys) side by side: 8 waste little on short sequences (8 frames fill them; 17
   tokens take 24 lanes, not 32). */
#define TSF__ATT_W 8
#define TSF__ATT_SHORT 32 /* longest short sequence; queries a block (a multiple of the lanes) */
#define TSF__ATT_SHORT_HS 128 /* widest head of the direct path (a multiple of 4) */
#define TSF__ATT_LONG 256     /* longest sequence of the direct path with narrow heads ... */
#define TSF__ATT_NARROW 16    /* ... of at most this many values */

static int tsf__att_direct(int SL, int HS) { /* 1: the direct path serves (SL, HS) */
    return HS % 4 == 0 && ((SL <= TSF__ATT_SHORT && HS <= TSF__ATT_SHORT_HS) ||
                           (SL <= TSF__ATT_LONG && HS <= TSF__ATT_NARROW));
}

/* dst // (HS, SP) = the transpose of src // (SL, HS) (row stride ld), zero past row SL. */
static void tsf__gather_t(float *dst, const float *src, size_t ld, int SL, int HS, int SP) {
    int i, d;
    for (d = 0; d < HS; d++) {
        for (i = 0; i < SL; i++) dst[d * SP + i] = src[(size_t)i * ld + d];
        for (; i < SP; i++) dst[d * SP + i] = 0.0f;
    }
}

/* dst // (nq rows of SLP) = the transpose of src // (SL rows of SP) restricted to SL x nq,
   zero past column SL: lanes over keys instead of queries. */
static void tsf__transpose_short(float *dst, const float *src, int nq, int SL, int SP, int SLP) {
    int i, j;
    for (i = 0; i < nq; i++) {
        for (j = 0; j < SL; j++) dst[i * SLP + j] = src[j * SP + i];
        for (; j < SLP; j++) dst[i * SLP + j] = 0.0f;
    }
}

/* o // (TSF__ATT_W) (+)= a times f. add: += (else =). */
static inline void tsf__short_row_out(float *o, const float *a, float f, int add) {
    int u;
    if (add)
        for (u = 0; u < TSF__ATT_W; u++) o[u] += a[u] * f;
    else
        for (u = 0; u < TSF__ATT_W; u++) o[u] = a[u] * f;
}

/* Rows 0 .. nr-1 (nr <= 4) of y // (4, TSF__ATT_W) (row stride ld) (+)= a0 .. a3, times
   mul[k] if mul is not NULL (else 1: that changes nothing). Written out row by row, so that
   the four sums stay in registers. */
static inline void tsf__short_out(float *y, size_t ld, const float *a0, const float *a1,
                                  const float *a2, const float *a3, const float *mul, int nr,
                                  int add) {
    tsf__short_row_out(y, a0, mul ? mul[0] : 1.0f, add);
    if (nr > 1) tsf__short_row_out(y + ld, a1, mul ? mul[1] : 1.0f, add);
    if (nr > 2) tsf__short_row_out(y + 2 * ld, a2, mul ? mul[2] : 1.0f, add);
    if (nr > 3) tsf__short_row_out(y + 3 * ld, a3, mul ? mul[3] : 1.0f, add);
}

/* Rows of a result a block: the vector paths below keep eight sums in named registers,
   because a fused multiply-add waits about four cycles for its sum and two issue a cycle, so
   eight independent sums keep both units busy where four would leave them idle half the time
   (joint attention's products, 129 terms long, 5% faster). A last block of at most four rows
   takes four sums (the rows past the end are computed, not stored: 17 tokens cost 20 rows, not
   24). The portable loops take four. */
#if defined(TSF__AVX512) || defined(TSF__AVX2)
#define TSF__SHORT_R 8
#else
#define TSF__SHORT_R 4
#endif

#if defined(TSF__AVX512) || defined(TSF__AVX2)
/* o // (8) (+)= s, times *mul if mul is not NULL. add: += (else =). */
static inline void tsf__short_put(float *o, __m256 s, const float *mul, int add) {
    if (mul) s = _mm256_mul_ps(s, _mm256_set1_ps(*mul));
    if (add) s = _mm256_add_ps(s, _mm256_loadu_ps(o));
    _mm256_storeu_ps(o, s);
}
/* Rows 0 .. nr-1 (nr <= 8) of o // (8 lanes, row stride ldo) (+)= the sum over t < n of
   a[k][t * as] times x[t * xs .. + 8], times mul[k] if mul is not NULL: eight sums in named
   registers, or four for a block of at most four rows. Every sum runs over t in order. */
static inline void tsf__short_sums(float *o, size_t ldo, const float *const *a, size_t as,
                                   const float *x, size_t xs, int n, int nr, const float *mul,
                                   int add) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0;
    __m256 s7 = s0, xv;
    size_t q = 0; /* t * as */
    int t;
    for (t = 0; nr > 4 && t < n; t++, q += as) {
        xv = _mm256_loadu_ps(x + (size_t)t * xs);
        s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[0] + q), xv, s0);
        s1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[1] + q), xv, s1);
        s2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[2] + q), xv, s2);
        s3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[3] + q), xv, s3);
        s4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[4] + q), xv, s4);
        s5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[5] + q), xv, s5);
        s6 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[6] + q), xv, s6);
        s7 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[7] + q), xv, s7);
    }
    for (t = 0; nr <= 4 && t < n; t++, q += as) { /* the last block, at most four rows */
        xv = _mm256_loadu_ps(x + (size_t)t * xs);
        s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[0] + q), xv, s0);
        s1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[1] + q), xv, s1);
        s2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[2] + q), xv, s2);
        s3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[3] + q), xv, s3);
    }
    tsf__short_put(o, s0, mul, add); /* the sums stay in registers up to here */
    if (nr > 1) tsf__short_put(o + ldo, s1, mul ? mul + 1 : NULL, add);
    if (nr > 2) tsf__short_put(o + 2 * ldo, s2, mul ? mul + 2 : NULL, add);
    if (nr > 3) tsf__short_put(o + 3 * ldo, s3, mul ? mul + 3 : NULL, add);
    if (nr > 4) tsf__short_put(o + 4 * ldo, s4, mul ? mul + 4 : NULL, add);
    if (nr > 5) tsf__short_put(o + 5 * ldo, s5, mul ? mul + 5 : NULL, add);
    if (nr > 6) tsf__short_put(o + 6 * ldo, s6, mul ? mul + 6 : NULL, add);
    if (nr > 7) tsf__short_put(o + 7 * ldo, s7, mul ? mul + 7 : NULL, add);
}
#endif

/* c // (n, SP) = a // (n, HS) (row stride lda) . bt // (HS, SP): row r of c is the sum over
   d of a[r][d] times row d of bt, lanes side by side; TSF__SHORT_R rows at a time
   (independent sums, each row of bt loaded once for them). */
static void tsf__short_rows(float *c, const float *a, size_t lda, const float *bt, int n, int HS,
                            int SP) {
    int r0, c0, k;
    for (r0 = 0; r0 < n; r0 += TSF__SHORT_R) {
        const float *ar[TSF__SHORT_R]; /* the rows (past n: the last again, not stored) */
        int nr = tsf__min(TSF__SHORT_R, n - r0);
        for (k = 0; k < TSF__SHORT_R; k++) ar[k] = a + (size_t)(r0 + tsf__min(k, nr - 1)) * lda;
#if defined(TSF__AVX512) || defined(TSF__AVX2)
        for (c0 = 0; c0 < SP; c0 += TSF__ATT_W) /* the same in named registers, with FMA */
            tsf__short_sums(c + (size_t)r0 * SP + c0, (size_t)SP, ar, 1, bt + c0, (size_t)SP, HS,
                            nr, NULL, 0);
#else
        for (c0 = 0; c0 < SP; c0 += TSF__ATT_W) {
            float a0[TSF__ATT_W] = {0}, a1[TSF__ATT_W] = {0}, a2[TSF__ATT_W] = {0};
            float a3[TSF__ATT_W] = {0};
            int d, u;
            for (d = 0; d < HS; d++) {
                const float *b = bt + (size_t)d * SP + c0;
                float x0 = ar[0][d], x1 = ar[1][d], x2 = ar[2][d], x3 = ar[3][d];
                for (u = 0; u < TSF__ATT_W; u++) {
                    a0[u] += x0 * b[u], a1[u] += x1 * b[u];
                    a2[u] += x2 * b[u], a3[u] += x3 * b[u];
                }
            }
            tsf__short_out(c + (size_t)r0 * SP + c0, SP, a0, a1, a2, a3, NULL, nr, 0);
        }
#endif
    }
}

/* y // (SL, HS) (row stride ldy) (+)= w^T . x: y[i][d] = sum over r < n of w(r, i) x[r][d],
   times mul[i] if mul is not NULL, with w(r, i) at w[r * wr + i * wi] and x // (n, HS) (row
   stride ldx). add: += (else =). When HS is a multiple of the lanes, TSF__SHORT_R rows of y at
   a time with lanes over its columns (whole vectors stored), for any strides of w; else four
   columns d at a time with lanes over y's rows, which must then be w's contiguous lanes (wi == 1,
   rows padded to a multiple of the lanes; HS a multiple of 4). Every branch sums over r in
   order. */
static void tsf__short_cols(float *y, size_t ldy, const float *w, size_t wr, size_t wi,
                            const float *x, size_t ldx, const float *mul, int n, int SL, int HS,
                            int add) {
    int d0, c0, r, u;
    if (HS % TSF__ATT_W == 0) {
        for (c0 = 0; c0 < SL; c0 += TSF__SHORT_R) { /* rows c0 .. of y (past SL: the last again) */
            int nr = tsf__min(TSF__SHORT_R, SL - c0);
            const float *wc[TSF__SHORT_R];
            for (u = 0; u < TSF__SHORT_R; u++) wc[u] = w + (size_t)(c0 + tsf__min(u, nr - 1)) * wi;
            for (d0 = 0; d0 < HS; d0 += TSF__ATT_W) {
#if defined(TSF__AVX512) || defined(TSF__AVX2)
                tsf__short_sums(y + (size_t)c0 * ldy + d0, ldy, wc, wr, x + d0, ldx, n, nr,
                                mul ? mul + c0 : NULL, add); /* in named registers, with FMA */
#else
                float a0[TSF__ATT_W] = {0}, a1[TSF__ATT_W] = {0}, a2[TSF__ATT_W] = {0};
                float a3[TSF__ATT_W] = {0};
                for (r = 0; r < n; r++) {
                    size_t q = (size_t)r * wr;
                    const float *xr = x + (size_t)r * ldx + d0;
                    float v0 = wc[0][q], v1 = wc[1][q], v2 = wc[2][q], v3 = wc[3][q];
                    for (u = 0; u < TSF__ATT_W; u++) {
                        a0[u] += v0 * xr[u], a1[u] += v1 * xr[u];
                        a2[u] += v2 * xr[u], a3[u] += v3 * xr[u];
                    }
                }
                tsf__short_out(y + (size_t)c0 * ldy + d0, ldy, a0, a1, a2, a3,
                               mul ? mul + c0 : NULL, nr, add);
#endif
            }
        }
        return;
    }
    TSF_ASSERT(wi == 1);
    for (d0 = 0; d0 < HS; d0 += 4)
        for (c0 = 0; c0 < SL; c0 += TSF__ATT_W) {
            float a0[TSF__ATT_W] = {0}, a1[TSF__ATT_W] = {0}, a2[TSF__ATT_W] = {0};
            float a3[TSF__ATT_W] = {0}, f[TSF__ATT_W];
            int nu = tsf__min(TSF__ATT_W, SL - c0);
            for (r = 0; r < n; r++) {
                const float *wv = w + (size_t)r * wr + c0, *xr = x + (size_t)r * ldx + d0;
                float x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
                for (u = 0; u < TSF__ATT_W; u++) {
                    a0[u] += wv[u] * x0, a1[u] += wv[u] * x1;
                    a2[u] += wv[u] * x2, a3[u] += wv[u] * x3;
                }
            }
            for (u = 0; u < TSF__ATT_W; u++) f[u] = mul ? mul[c0 + u] : 1.0f;
            for (u = 0; u < TSF__ATT_W; u++) /* (multiplying by 1 changes nothing) */
                a0[u] *= f[u], a1[u] *= f[u], a2[u] *= f[u], a3[u] *= f[u];
            for (u = 0; u < nu; u++) {
                float *o = y + (size_t)(c0 + u) * ldy + d0;
                if (add)
                    o[0] += a0[u], o[1] += a1[u], o[2] += a2[u], o[3] += a3[u];
                else
                    o[0] = a0[u], o[1] = a1[u], o[2] = a2[u], o[3] = a3[u];
            }
        }
}

/* One sequence and head of the fused forward, tsf__att_direct(SL, HS): q, k, v // (SL, HS)
   with row stride 3D; the first NQ queries (NQ <= SL) against every key: o // (NQ, HS) with
   row stride D, lse // (NQ) or NULL. */
static void tsf__attention_short_forward(float *o, float *lse, const float *q, const float *k,
                                         const float *v, int SL, int NQ, int D, int HS,
                                         float scale) {
    float qt[TSF__ATT_SHORT_HS * TSF__ATT_SHORT], p[TSF__ATT_LONG * TSF__ATT_SHORT];
    float inv[TSF__ATT_SHORT];
    size_t ld3 = 3 * (size_t)D;
    int q0, c0, j, u;
    for (q0 = 0; q0 < NQ; q0 += TSF__ATT_SHORT) { /* queries q0 .. q0+nq-1 against every key */
        int nq = tsf__min(TSF__ATT_SHORT, NQ - q0);
        int SP = (nq + TSF__ATT_W - 1) / TSF__ATT_W * TSF__ATT_W;
        tsf__gather_t(qt, q + (size_t)q0 * ld3, ld3, nq, HS, SP);
        tsf__short_rows(p, k, ld3, qt, SL, HS, SP); /* p[j][i] = k_j . q_i // (SL, SP) */
        for (c0 = 0; c0 < SP; c0 += TSF__ATT_W) {
            float m[TSF__ATT_W], s[TSF__ATT_W] = {0};
            for (u = 0; u < TSF__ATT_W; u++) m[u] = -INFINITY;
            for (j = 0; j < SL; j++) /* the max over keys of each query's scaled scores */
                for (u = 0; u < TSF__ATT_W; u++) {
                    float x = p[j * SP + c0 + u] * scale;
                    m[u] = x > m[u] ? x : m[u];
                }
            for (j = 0; j < SL; j++) /* p = exp(score - max), summed over keys */
                for (u = 0; u < TSF__ATT_W; u++) {
                    float *x = p + j * SP + c0 + u;
                    *x = tsf__expf(*x * scale - m[u]);
                    s[u] += *x;
                }
            for (u = 0; u < TSF__ATT_W; u++) inv[c0 + u] = 1.0f / s[u];
            for (u = 0; lse && u < tsf__min(TSF__ATT_W, nq - c0); u++)
                lse[q0 + c0 + u] = m[u] + logf(s[u]);
        }
        /* o = (p^T . v) / sum */
        tsf__short_cols(o + (size_t)q0 * D, (size_t)D, p, (size_t)SP, 1, v, ld3, inv, SL, nq, HS,
                        0);
    }
}

/* One sequence and head of the fused backward, tsf__att_direct(SL, HS), of the forward's
   first NQ queries: with ld3 = 3D the row stride of q, k, v and their gradients dq, dk, dv
   // (SL, HS), and D that of o and dy (dout) // (NQ, HS). dk and dv sum over the blocks of
   queries, in order; the rows of dq past NQ are zero (add: unchanged). */
static void tsf__attention_short_backward(float *dq, float *dk, float *dv, const float *q,
                                          const float *k, const float *v, const float *o,
                                          const float *dy, const float *lse, int SL, int NQ, int D,
                                          int HS, float scale, int add) {
    float qt[TSF__ATT_SHORT_HS * TSF__ATT_SHORT], dyt[TSF__ATT_SHORT_HS * TSF__ATT_SHORT];
    float p[TSF__ATT_LONG * TSF__ATT_SHORT], ds[TSF__ATT_LONG * TSF__ATT_SHORT];
    float t[TSF__ATT_SHORT * TSF__ATT_LONG], ls[TSF__ATT_SHORT], di[TSF__ATT_SHORT];
    size_t ld3 = 3 * (size_t)D;
    int SLP = (SL + TSF__ATT_W - 1) / TSF__ATT_W * TSF__ATT_W, q0, i, j, d, u;
    for (i = NQ; i < SL && !add; i++) memset(dq + (size_t)i * ld3, 0, (size_t)HS * sizeof(float));
    for (q0 = 0; q0 < NQ; q0 += TSF__ATT_SHORT) { /* queries q0 .. q0+nq-1 against every key */
        int nq = tsf__min(TSF__ATT_SHORT, NQ - q0);
        int SP = (nq + TSF__ATT_W - 1) / TSF__ATT_W * TSF__ATT_W;
        const float *qb = q + (size_t)q0 * ld3, *dyb = dy + (size_t)q0 * D;
        for (i = 0; i < SP; i++) { /* di = <dout, out> per query = <dp, p> of the softmax */
            float acc = 0.0f;
            for (d = 0; i < nq && d < HS; d++)
                acc += dyb[(size_t)i * D + d] * o[(size_t)(q0 + i) * D + d];
            di[i] = acc, ls[i] = i < nq ? lse[q0 + i] : 0.0f; /* padded lanes: zeros */
        }
        tsf__gather_t(qt, qb, ld3, nq, HS, SP);
        tsf__gather_t(dyt, dyb, (size_t)D, nq, HS, SP);
        tsf__short_rows(p, k, ld3, qt, SL, HS, SP);   /* p[j][i] = k_j . q_i */
        tsf__short_rows(ds, v, ld3, dyt, SL, HS, SP); /* ds[j][i] = v_j . dout_i = dp */
        for (j = 0; j < SL; j++) /* p = exp(score - lse): the forward's; ds = scale p (dp - di) */
            for (i = 0; i < SP; i += TSF__ATT_W)
                for (u = 0; u < TSF__ATT_W; u++) {
                    float *x = p + j * SP + i + u, *y = ds + j * SP + i + u;
                    *x = tsf__expf(*x * scale - ls[i + u]);
                    *y = scale * *x * (*y - di[i + u]);
                }
        /* dq = ds^T . k */
        tsf__short_cols(dq + (size_t)q0 * ld3, ld3, ds, (size_t)SP, 1, k, ld3, NULL, SL, nq, HS,
                        add);
        /* dv (+)= p . dout and dk (+)= ds . q: p and ds read across their lanes; or, with
           lanes over keys (a head not a multiple of the lanes), transposed first */
        if (HS % TSF__ATT_W == 0) {
            tsf__short_cols(dv, ld3, p, 1, (size_t)SP, dyb, (size_t)D, NULL, nq, SL, HS,
                            add || q0 > 0);
            tsf__short_cols(dk, ld3, ds, 1, (size_t)SP, qb, ld3, NULL, nq, SL, HS, add || q0 > 0);
        } else {
            tsf__transpose_short(t, p, nq, SL, SP, SLP);
            tsf__short_cols(dv, ld3, t, (size_t)SLP, 1, dyb, (size_t)D, NULL, nq, SL, HS,
                            add || q0 > 0);
            tsf__transpose_short(t, ds, nq, SL, SP, SLP);
            tsf__short_cols(dk, ld3, t, (size_t)SLP, 1, qb, ld3, NULL, nq, SL, HS, add || q0 > 0);
        }
    }
}

/* The fused forward of the first NQ queries of every sequence (NQ <= SL) against all its
   keys: out // (S*NQ, D), lse // (S, NH, NQ). NQ = SL is tsf_attention_fused_forward; NQ = 1
   serves the last block, whose head reads each sequence's cls row alone (tsf__block_forward).
   With work space (the model's), a thread packs a head's keys once for all its blocks of
   queries, and a block of queries once for all the tiles of keys (tsf__matmul_panels: the
   same bits); without, each tile's product packs both again. */
static void tsf__attention_fused_forward(float *out, float *lse, const float *qkv, int S, int SL,
                                         int NQ, int D, int NH, tsf__work w) {
    int HS = D / NH, nqb = (NQ + TSF__ATT_BQ - 1) / TSF__ATT_BQ, D3 = 3 * D, mr, nr;
    float scale = 1.0f / sqrtf((float)HS);
    long it, items = (long)S * NH * nqb;
    size_t need; /* floats of a thread's packed keys and queries */
    TSF_ASSERT(NH > 0 && D % NH == 0 && NQ > 0 && NQ <= SL);
    tsf__panel_sizes(&mr, &nr);
    need = ((size_t)(SL + nr - 1) / nr * nr + (size_t)(TSF__ATT_BQ + mr - 1) / mr * mr) * HS;
    if (tsf__att_direct(SL, HS)) { /* one item: (sequence, head) */
        TSF__OMP_FOR((double)S * NQ * SL * D > TSF__PAR_MM_WORK && S * NH > 1)
        for (it = 0; it < (long)S * NH; it++) {
            long s = it / NH;
            int g = (int)(it % NH);
            const float *q = qkv + (size_t)s * SL * D3 + (size_t)g * HS;
            tsf__attention_short_forward(out + (size_t)s * NQ * D + (size_t)g * HS,
                                         lse ? lse + (size_t)it * NQ : NULL, q, q + D, q + 2 * D,
                                         SL, NQ, D, HS, scale);
        }
        return;
    }
    /* one item: sequence s, head g, query rows q0 .. q0+bq-1; items write disjoint rows. A
       thread's items are consecutive (static), so mostly of one head. */
    TSF__OMP_PARALLEL((double)S * NQ * SL * D > TSF__PAR_MM_WORK && items > 1) {
        tsf__pack pk;
        long nth = TSF__OMP_THREADS(), th = TSF__OMP_THREAD();
        size_t slot = w.p && HS <= TSF_MM_KC && TSF__ATT_BK % nr == 0 ? w.n / (size_t)nth : 0;
        float *kp = slot >= need ? w.p + (size_t)th * slot : NULL; /* the head's keys, packed */
        float *qp = kp ? kp + (size_t)(SL + nr - 1) / nr * nr * HS : NULL; /* and the queries */
        const float *packed = NULL;                                        /* whose keys kp holds */
        TSF__OMP_LOOP_STATIC
        for (it = 0; it < items; it++) {
            float st[TSF__ATT_BQ * TSF__ATT_BK], mx[TSF__ATT_BQ], sum[TSF__ATT_BQ];
            long s = it / ((long)NH * nqb);
            int g = (int)(it / nqb % NH), q0 = (int)(it % nqb) * TSF__ATT_BQ, k0, i, j;
            int bq = tsf__min(TSF__ATT_BQ, NQ - q0);
            const float *q = qkv + (size_t)s * SL * D3 + (size_t)g * HS, *k = q + D, *v = q + 2 * D;
            float *o =
                out + ((size_t)s * NQ + q0) * D + (size_t)g * HS; /* o // (bq, HS), stride D */
            if (kp && packed != k) tsf__pack_cols_t(kp, k, D3, SL, HS), packed = k;
            if (kp) tsf__pack_rows(qp, q + (size_t)q0 * D3, D3, bq, HS);
            for (k0 = 0; k0 < SL; k0 += TSF__ATT_BK) {
                int bk = tsf__min(TSF__ATT_BK, SL - k0);
                /* st // (bq, bk) = q rows q0.. . k rows k0.. ^T */
                if (!kp || !tsf__matmul_panels(&pk, st, bk, qp, kp + (size_t)k0 * HS, bq, bk, HS))
                    tsf__matmul_serial(&pk, st, bk, q + (size_t)q0 * D3, D3, 0, k + (size_t)k0 * D3,
                                       D3, 1, bq, bk, HS, 0);
                /* st = exp(st * scale - running max); rescale what o and sum hold when it grew */
                for (i = 0; i < bq; i++) {
                    float *row = st + (size_t)i * bk, c, rs;
                    float m = tsf__scaled_max(row, bk, scale, k0 ? mx[i] : -INFINITY);
                    rs = tsf__exp_shifted(row, bk, scale, m);
                    c = k0 ? expf(mx[i] - m) : 0.0f;
                    sum[i] = k0 ? sum[i] * c + rs : rs;
                    for (j = 0; j < HS && k0 && c != 1.0f; j++) o[(size_t)i * D + j] *= c;
                    mx[i] = m;
                }
                /* o (+)= st . v rows k0.. // (bk, HS) */
                tsf__matmul_serial(&pk, o, D, st, bk, 0, v + (size_t)k0 * D3, D3, 0, bq, HS, bk,
                                   k0 > 0);
            }
            for (i = 0; i < bq; i++) { /* normalise; lse = max + log(sum) */
                float inv = 1.0f / sum[i];
                for (j = 0; j < HS; j++) o[(size_t)i * D + j] *= inv;
                if (lse) lse[((size_t)s * NH + g) * NQ + q0 + i] = mx[i] + logf(sum[i]);
            }
        }
    }
}

TSFDEF void tsf_attention_fused_forward(float *out, float *lse, const float *qkv, int S, int SL,
                                        int D, int NH) {
    tsf__attention_fused_forward(out, lse, qkv, S, SL, SL, D, NH, tsf__no_work);
}

/* The backward of tsf__attention_fused_forward (the first NQ queries of each sequence):
   dqkv // (S*SL, 3D) (+)= from dout, out // (S*NQ, D) and lse; dq of the rows past NQ is 0. */
static void tsf__attention_fused_backward(float *dqkv, const float *dout, const float *qkv,
                                          const float *out, const float *lse, int S, int SL, int NQ,
                                          int D, int NH, int add) {
    int HS = D / NH, D3 = 3 * D;
    float scale = 1.0f / sqrtf((float)HS);
    long it, items = (long)S * NH;
    TSF_ASSERT(NH > 0 && D % NH == 0 && NQ > 0 && NQ <= SL);
    if (tsf__att_direct(SL, HS)) {
        TSF__OMP_FOR((double)S * NQ * SL * D > TSF__PAR_MM_WORK && items > 1)
        for (it = 0; it < items; it++) {
            size_t qo = (size_t)(it / NH) * SL * D3 + (size_t)(it % NH) * HS;
            size_t oo = (size_t)(it / NH) * NQ * D + (size_t)(it % NH) * HS;
            tsf__attention_short_backward(dqkv + qo, dqkv + qo + D, dqkv + qo + 2 * D, qkv + qo,
                                          qkv + qo + D, qkv + qo + 2 * D, out + oo, dout + oo,
                                          lse + (size_t)it * NQ, SL, NQ, D, HS, scale, add);
        }
        return;
    }
    /* one item: sequence s, head g (its dk and dv sum over all query rows); items write
       disjoint columns of dqkv */
    TSF__OMP_FOR((double)S * NQ * SL * D > TSF__PAR_MM_WORK && items > 1)
    for (it = 0; it < items; it++) {
        tsf__pack pk;
        float p[TSF__ATT_BQ * TSF__ATT_BK], ds[TSF__ATT_BQ * TSF__ATT_BK], di[TSF__ATT_BQ];
        long s = it / NH;
        int g = (int)(it % NH), q0, k0, i, j;
        size_t qo = (size_t)s * SL * D3 + (size_t)g * HS, oo = (size_t)s * NQ * D + (size_t)g * HS;
        const float *q = qkv + qo, *k = q + D, *v = q + 2 * D, *o = out + oo, *dy = dout + oo;
        const float *ls = lse + ((size_t)s * NH + g) * NQ;
        float *dq = dqkv + qo, *dk = dq + D, *dv = dq + 2 * D;
        for (i = 0; i < SL && !add; i++) /* TSF__SET: this item's columns start at zero */
            for (j = 0; j < 3; j++)
                memset(dq + (size_t)i * D3 + (size_t)j * D, 0, HS * sizeof(float));
        for (q0 = 0; q0 < NQ; q0 += TSF__ATT_BQ) {
            int bq = tsf__min(TSF__ATT_BQ, NQ - q0);
            const float *qb = q + (size_t)q0 * D3, *dyb = dy + (size_t)q0 * D;
            for (i = 0; i < bq; i++) { /* di = <dout, out> per row = <dp, p> of the softmax */
                float acc = 0.0f;
                for (j = 0; j < HS; j++)
                    acc += dyb[(size_t)i * D + j] * o[(size_t)(q0 + i) * D + j];
                di[i] = acc;
            }
            for (k0 = 0; k0 < SL; k0 += TSF__ATT_BK) {
                int bk = tsf__min(TSF__ATT_BK, SL - k0);
                const float *kb = k + (size_t)k0 * D3;
                /* p // (bq, bk) = exp(q . k^T * scale - lse): the forward's probabilities */
                tsf__matmul_serial(&pk, p, bk, qb, D3, 0, kb, D3, 1, bq, bk, HS, 0);
                for (i = 0; i < bq; i++)
                    tsf__exp_shifted(p + (size_t)i * bk, bk, scale, ls[q0 + i]);
                /* dv rows k0.. += p^T . dout rows q0.. */
                tsf__matmul_serial(&pk, dv + (size_t)k0 * D3, D3, p, bk, 1, dyb, D, 0, bk, HS, bq,
                                   1);
                /* ds = dout . v^T, then d(raw scores) = scale * p * (ds - di) */
                tsf__matmul_serial(&pk, ds, bk, dyb, D, 0, v + (size_t)k0 * D3, D3, 1, bq, bk, HS,
                                   0);
                for (i = 0; i < bq; i++)
                    for (j = 0; j < bk; j++) {
                        size_t e = (size_t)i * bk + j;
                        ds[e] = scale * p[e] * (ds[e] - di[i]);
                    }
                /* dq rows q0.. += ds . k rows k0..;  dk rows k0.. += ds^T . q rows q0.. */
                tsf__matmul_serial(&pk, dq + (size_t)q0 * D3, D3, ds, bk, 0, kb, D3, 0, bq, HS, bk,
                                   1);
                tsf__matmul_serial(&pk, dk + (size_t)k0 * D3, D3, ds, bk, 1, qb, D3, 0, bk, HS, bq,
                                   1);
            }
        }
    }
}

TSFDEF void tsf_attention_fused_backward(float *dqkv, const float *dout, const float *qkv,
                                         const float *out, const float *lse, int S, int SL, int D,
                                         int NH) {
    tsf__attention_fused_backward(dqkv, dout, qkv, out, lse, S, SL, SL, D, NH, TSF__ADD);
}

/* ---- big buffers cleared and copied in parallel chunks (the model's, between kernels) ---- */
#define TSF__CHUNK 16384
static void tsf__zero(float *x, size_t n) { /* x // (n) = 0 */
    long c, chunks = (long)((n + TSF__CHUNK - 1) / TSF__CHUNK);
    TSF__OMP_FOR(chunks > 4)
    for (c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * TSF__CHUNK, len = n - i0 < TSF__CHUNK ? n - i0 : TSF__CHUNK;
        memset(x + i0, 0, len * sizeof(float));
    }
}
static void tsf__copy(float *dst, const float *src, size_t n) { /* dst // (n) = src */
    long c, chunks = (long)((n + TSF__CHUNK - 1) / TSF__CHUNK);
    TSF__OMP_FOR(chunks > 4)
    for (c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * TSF__CHUNK, len = n - i0 < TSF__CHUNK ? n - i0 : TSF__CHUNK;
        memcpy(dst + i0, src + i0, len * sizeof(float));
    }
}

/* ---- residual ---------------------------------------------------------------------------- */
TSFDEF void tsf_residual_forward(float *out, const float *a, const float *b, size_t n) {
    long c;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK)
    for (c = 0; c < (long)((n + TSF__EW_BLOCK - 1) / TSF__EW_BLOCK); c++) {
        size_t i = (size_t)c * TSF__EW_BLOCK;
        tsf__add_or_mul_n(out + i, a + i, b + i, n - i < TSF__EW_BLOCK ? n - i : TSF__EW_BLOCK, 1);
    }
}

TSFDEF void tsf_residual_backward(float *da, float *db, const float *dout, size_t n) {
    long c;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK)
    for (c = 0; c < (long)((n + TSF__EW_BLOCK - 1) / TSF__EW_BLOCK); c++) {
        size_t i = (size_t)c * TSF__EW_BLOCK, w = n - i < TSF__EW_BLOCK ? n - i : TSF__EW_BLOCK;
        if (da) tsf__add_or_mul_n(da + i, da + i, dout + i, w, 1);
        if (db) tsf__add_or_mul_n(db + i, db + i, dout + i, w, 1);
    }
}

/* ---- mean over groups of rows ------------------------------------------------------------ */
TSFDEF void tsf_mean_forward(float *out, const float *inp, int G, int R, int D, size_t stride) {
    float inv = 1.0f / (float)R;
    int g, r, i;
    TSF_ASSERT(R > 0 && stride >= (size_t)D);
    for (g = 0; g < G; g++) {
        float *o = out + (size_t)g * D;
        for (i = 0; i < D; i++) o[i] = 0.0f;
        for (r = 0; r < R; r++) {
            tsf__add_or_mul_n(o, o, inp + ((size_t)g * R + r) * stride, (size_t)D, 1);
        }
        for (i = 0; i < D; i++) o[i] *= inv;
    }
}

TSFDEF void tsf_mean_backward(float *dinp, const float *dout, int G, int R, int D, size_t stride) {
    float inv = 1.0f / (float)R;
    int g, r, i;
    TSF_ASSERT(R > 0 && stride >= (size_t)D);
    for (g = 0; g < G; g++)
        for (r = 0; r < R; r++) {
            float *dx = dinp + ((size_t)g * R + r) * stride;
            for (i = 0; i < D; i++) dx[i] += dout[(size_t)g * D + i] * inv;
        }
}

/* ---- cross-entropy ----------------------------------------------------------------------- */
TSFDEF void tsf_crossentropy_forward(float *losses, float *probs, const float *logits,
                                     const int *labels, int B, int K, float smoothing) {
    int b, k;
    for (b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K, mx = -INFINITY, sum = 0.0f, lse, zmean = 0.0f;
        TSF_ASSERT(labels[b] >= 0 && labels[b] < K);
        for (k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        for (k = 0; k < K; k++) {
            p[k] = expf(z[k] - mx);
            sum += p[k];
        }
        for (k = 0; k < K; k++) {
            p[k] /= sum;
            zmean += z[k];
        }
        zmean /= (float)K;
        lse = mx + logf(sum);
        /* target: (1 - eps) one-hot + eps / K everywhere */
        losses[b] = lse - (1.0f - smoothing) * z[labels[b]] - smoothing * zmean;
    }
}

TSFDEF void tsf_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B,
                                      int K, float smoothing, float dloss) {
    int b, k;
    for (b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K;
        float *dz = dlogits + (size_t)b * K;
        TSF_ASSERT(labels[b] >= 0 && labels[b] < K);
        for (k = 0; k < K; k++) {
            float target = smoothing / (float)K + (k == labels[b] ? 1.0f - smoothing : 0.0f);
            dz[k] += dloss * (p[k] - target);
        }
    }
}

/* ---- patch embedding --------------------------------------------------------------------- */
/* The patch (i, j) of frame f = b*T + t is row f*Hp*Wp + i*Wp + j of cols // (B*T*Hp*Wp, C*P*P).
   With dinp == NULL, copy every patch of inp // (B, C, T, H, W) into its row of cols;
   otherwise add every row of cols back into its patch of dinp (the gather's backward). */
static void tsf__patch_gather(float *cols, const float *inp, float *dinp, int B, int C, int T,
                              int H, int W, int P) {
    int Hp = H / P, Wp = W / P, CPP = C * P * P;
    long f;
    TSF__OMP_FOR((double)B * T * C * H * W > TSF__PAR_WORK)
    for (f = 0; f < (long)B * T; f++) {
        size_t b = (size_t)f / T, t = (size_t)f % T;
        int i, j, c, ky, kx;
        for (i = 0; i < Hp; i++)
            for (j = 0; j < Wp; j++) {
                float *row = cols + ((size_t)f * Hp * Wp + (size_t)i * Wp + j) * CPP;
                for (c = 0; c < C; c++)
                    for (ky = 0; ky < P; ky++) {
                        size_t px =
                            (((b * C + c) * T + t) * H + (size_t)i * P + ky) * W + (size_t)j * P;
                        float *cx = row + (c * P + ky) * P;
                        for (kx = 0; kx < P; kx++) {
                            if (dinp)
                                dinp[px + kx] += cx[kx];
                            else
                                cx[kx] = inp[px + kx];
                        }
                    }
            }
    }
}

TSFDEF void tsf_patch_embed_forward(float *out, float *cols, const float *inp, const float *weight,
                                    const float *bias, int B, int C, int T, int H, int W, int P,
                                    int D) {
    int M = B * T * (H / P) * (W / P);
    TSF_ASSERT(P > 0 && H >= P && W >= P);
    tsf__patch_gather(cols, inp, NULL, B, C, T, H, W, P);
    tsf_linear_forward(out, cols, weight, bias, M, C * P * P, D);
}

TSFDEF void tsf_patch_embed_backward(float *dinp, float *dcols, float *dweight, float *dbias,
                                     const float *dout, const float *cols, const float *weight,
                                     int B, int C, int T, int H, int W, int P, int D) {
    int M = B * T * (H / P) * (W / P), CPP = C * P * P;
    if (dinp) {
        TSF_ASSERT(dcols != NULL);
        memset(dcols, 0, (size_t)M * CPP * sizeof(float));
    }
    tsf_linear_backward(dinp ? dcols : NULL, dweight, dbias, dout, cols, weight, M, CPP, D);
    if (dinp) tsf__patch_gather(dcols, NULL, dinp, B, C, T, H, W, P);
}

/* ==========================================================================================
   MODEL
   ========================================================================================== */

TSFDEF const char *tsf_attention_name(int attention) {
    switch (attention) {
    case TSF_ATTN_DIVIDED:
        return "divided_space_time";
    case TSF_ATTN_JOINT:
        return "joint_space_time";
    case TSF_ATTN_SPACE:
        return "space_only";
    case TSF_ATTN_LOCAL_GLOBAL:
        return "sparse_local_global";
    case TSF_ATTN_AXIAL:
        return "axial";
    default:
        return "unknown";
    }
}

TSFDEF int tsf_attention_parse(const char *name) {
    int a;
    for (a = 0; a < TSF_NUM_ATTENTION; a++)
        if (name && strcmp(name, tsf_attention_name(a)) == 0) return a;
    return -1;
}

TSFDEF const char *tsf_pos_embed_name(int pos_embed) {
    return pos_embed == TSF_POS_SPACE_TIME ? "space_time"
           : pos_embed == TSF_POS_SPACE    ? "space"
           : pos_embed == TSF_POS_NONE     ? "none"
                                           : "unknown";
}

TSFDEF int tsf_pos_embed_parse(const char *name) {
    int k;
    for (k = 0; k < 3; k++)
        if (name && strcmp(name, tsf_pos_embed_name(k)) == 0) return k;
    return -1;
}

static int tsf__hidden(const tsf_config *c) { return (int)((float)c->dim * c->mlp_ratio); }

/* Upper bounds that keep every size computation far from overflow; no real model is near. */
#define TSF__MAX_DIM 65536
#define TSF__MAX_FLOATS ((double)((size_t)1 << (sizeof(size_t) > 4 ? 40 : 28)))

TSFDEF tsf_status tsf_config_resolve(tsf_config *c) {
    int i;
    if (!c) return TSF_ERR_ARG;
    if (!c->image_size) c->image_size = 112;
    if (!c->patch_size) c->patch_size = 16;
    if (!c->channels) c->channels = 3;
    if (!c->frames) c->frames = 8;
    if (!c->dim) c->dim = 192;
    if (!c->depth) c->depth = 4;
    if (!c->heads) c->heads = 3;
    if (c->mlp_ratio == 0.0f) c->mlp_ratio = 4.0f;
    if (!c->classes) c->classes = 10;
    if (c->ln_eps == 0.0f) c->ln_eps = 1e-6f;
    if (c->std[0] == 0.0f && c->std[1] == 0.0f && c->std[2] == 0.0f)
        for (i = 0; i < 3; i++) c->mean[i] = 0.45f, c->std[i] = 0.225f;
    if (!c->crop_size) c->crop_size = c->image_size;
    if (!c->short_side) c->short_side = c->crop_size;
    if (c->crop_size < 1 || c->crop_size > TSF__MAX_DIM || c->short_side < c->crop_size ||
        c->short_side > TSF__MAX_DIM)
        return TSF_ERR_CONFIG;
    if (c->image_size < 1 || c->patch_size < 1 || c->image_size < c->patch_size ||
        c->image_size > TSF__MAX_DIM || c->patch_size > TSF__MAX_DIM || c->channels < 1 ||
        c->channels > 64 || c->frames < 1 || c->frames > TSF__MAX_DIM || c->dim < 1 ||
        c->dim > TSF__MAX_DIM || c->depth < 1 || c->depth > 1024 || c->heads < 1 ||
        c->dim % c->heads != 0 || !(c->mlp_ratio > 0.0f) || c->mlp_ratio > 64.0f ||
        tsf__hidden(c) < 1 || c->classes < 1 || c->classes > (1 << 24) || c->attention < 0 ||
        c->attention >= TSF_NUM_ATTENTION || c->pos_embed < 0 || c->pos_embed > 2 ||
        !(c->ln_eps > 0.0f) || c->ln_eps > 1.0f)
        return TSF_ERR_CONFIG;
    for (i = 0; i < 3; i++)
        if (!(c->std[i] > 0.0f) || c->mean[i] != c->mean[i]) return TSF_ERR_CONFIG;
    if ((double)tsf_config_num_params(c) > TSF__MAX_FLOATS) return TSF_ERR_OVERFLOW;
    return TSF_OK;
}

/* ---- the parameter table -----------------------------------------------------------------
   Everything the library knows about a parameter tensor is in this table, one row per field
   of tsf_params, in struct order: its names in both schemes, its shape, its kind and
   initialisation, and when it exists. Sizes, the per-block layout, weight decay, the
   initialisation, and the names and shapes of weight files are all derived from it, so a new
   tensor is a field in tsf_params and a row here (docs/model.md section 7 has it as a table).
     shape: one letter a dimension, as the tensor is in a Hugging Face file: D width,
            3 three widths (qkv), H MLP width, K classes, C channels, P patch side,
            Q position rows 1 + (S0/P)^2, T frames T0, 1 one. A per-block tensor has L of
            them stacked in front in tsf_params (a file has one tensor a block).
     kind:  what it is; weight decay (when the SGD options exempt some) applies to
            matrices only.
     init:  tsf_model_init_params' rule: zeros, ones, trunc-normal (std 0.02, the original's
            trunc_normal_) or fan_in (PyTorch's Conv2d default, U(+-1/sqrt(C P P))). Drawn
            from one generator in table order, the trunc-normal tensors first.
     when:  the variants or options it exists in (else its view is NULL). */
enum { TSF__EMBED, TSF__NORM, TSF__MATRIX, TSF__BIAS };
enum { TSF__ZEROS, TSF__ONES, TSF__TRUNC, TSF__FAN_IN };
#define TSF__ALWAYS 0
#define TSF__IF_POS 1       /* pos_embed space_time or space                      */
#define TSF__IF_TIME 2      /* pos_embed space_time, every variant but space_only */
#define TSF__IF_TEMPORAL 4  /* divided_space_time and axial: the temporal step    */
#define TSF__IF_LOCAL 8     /* sparse_local_global: the local step                */
#define TSF__IF_WIDTH 16    /* axial: the width step                              */
#define TSF__IF_QKV_BIAS 32 /* with qkv biases (cfg.no_qkv_bias 0)                */
#define TSF__FIELD(f) (int)(offsetof(tsf_params, f) / sizeof(float *))
#define TSF__BLOCK "timesformer.encoder.layer.%d."

static const struct tsf__param_row {
    int field;             /* the tsf_params field (its index among the pointers)  */
    int per_block;         /* 1: one per block                                     */
    const char *shape;     /* as above                                             */
    int kind, init, when;  /* as above                                             */
    const char *hf, *orig; /* Hugging Face and original code names, %d the block   */
} tsf__param_table[TSF_NUM_PARAMS] = {
    /* clang-format off */
    /* field                 block shape   kind         init        when */
    {TSF__FIELD(cls_token),  0, "11D",  TSF__EMBED,  TSF__TRUNC,  TSF__ALWAYS,
     "timesformer.embeddings.cls_token", "cls_token"},
    {TSF__FIELD(pos_embed),  0, "1QD",  TSF__EMBED,  TSF__TRUNC,  TSF__IF_POS,
     "timesformer.embeddings.position_embeddings", "pos_embed"},
    {TSF__FIELD(time_embed), 0, "1TD",  TSF__EMBED,  TSF__ZEROS,  TSF__IF_TIME,
     "timesformer.embeddings.time_embeddings", "time_embed"},
    {TSF__FIELD(patch_w),    0, "DCPP", TSF__MATRIX, TSF__FAN_IN, TSF__ALWAYS,
     "timesformer.embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"},
    {TSF__FIELD(patch_b),    0, "D",    TSF__BIAS,   TSF__FAN_IN, TSF__ALWAYS,
     "timesformer.embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias"},
    {TSF__FIELD(t_ln_w),     1, "D",    TSF__NORM,   TSF__ONES,   TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_layernorm.weight", "blocks.%d.temporal_norm1.weight"},
    {TSF__FIELD(t_ln_b),     1, "D",    TSF__NORM,   TSF__ZEROS,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_layernorm.bias", "blocks.%d.temporal_norm1.bias"},
    {TSF__FIELD(t_qkv_w),    1, "3D",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_attention.attention.qkv.weight", "blocks.%d.temporal_attn.qkv.weight"},
    {TSF__FIELD(t_qkv_b),    1, "3",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_TEMPORAL | TSF__IF_QKV_BIAS,
     TSF__BLOCK "temporal_attention.attention.qkv.bias", "blocks.%d.temporal_attn.qkv.bias"},
    {TSF__FIELD(t_proj_w),   1, "DD",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_attention.output.dense.weight", "blocks.%d.temporal_attn.proj.weight"},
    {TSF__FIELD(t_proj_b),   1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_attention.output.dense.bias", "blocks.%d.temporal_attn.proj.bias"},
    {TSF__FIELD(t_fc_w),     1, "DD",   TSF__MATRIX, TSF__ZEROS,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_dense.weight", "blocks.%d.temporal_fc.weight"},
    {TSF__FIELD(t_fc_b),     1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_TEMPORAL,
     TSF__BLOCK "temporal_dense.bias", "blocks.%d.temporal_fc.bias"},
    {TSF__FIELD(l_ln_w),     1, "D",    TSF__NORM,   TSF__ONES,   TSF__IF_LOCAL,
     TSF__BLOCK "local_layernorm.weight", "blocks.%d.local_norm1.weight"},
    {TSF__FIELD(l_ln_b),     1, "D",    TSF__NORM,   TSF__ZEROS,  TSF__IF_LOCAL,
     TSF__BLOCK "local_layernorm.bias", "blocks.%d.local_norm1.bias"},
    {TSF__FIELD(l_qkv_w),    1, "3D",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_LOCAL,
     TSF__BLOCK "local_attention.attention.qkv.weight", "blocks.%d.local_attn.qkv.weight"},
    {TSF__FIELD(l_qkv_b),    1, "3",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_LOCAL | TSF__IF_QKV_BIAS,
     TSF__BLOCK "local_attention.attention.qkv.bias", "blocks.%d.local_attn.qkv.bias"},
    {TSF__FIELD(l_proj_w),   1, "DD",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_LOCAL,
     TSF__BLOCK "local_attention.output.dense.weight", "blocks.%d.local_attn.proj.weight"},
    {TSF__FIELD(l_proj_b),   1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_LOCAL,
     TSF__BLOCK "local_attention.output.dense.bias", "blocks.%d.local_attn.proj.bias"},
    {TSF__FIELD(l_fc_w),     1, "DD",   TSF__MATRIX, TSF__ZEROS,  TSF__IF_LOCAL,
     TSF__BLOCK "local_dense.weight", "blocks.%d.local_fc.weight"},
    {TSF__FIELD(l_fc_b),     1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_LOCAL,
     TSF__BLOCK "local_dense.bias", "blocks.%d.local_fc.bias"},
    {TSF__FIELD(w_ln_w),     1, "D",    TSF__NORM,   TSF__ONES,   TSF__IF_WIDTH,
     TSF__BLOCK "width_layernorm.weight", "blocks.%d.width_norm1.weight"},
    {TSF__FIELD(w_ln_b),     1, "D",    TSF__NORM,   TSF__ZEROS,  TSF__IF_WIDTH,
     TSF__BLOCK "width_layernorm.bias", "blocks.%d.width_norm1.bias"},
    {TSF__FIELD(w_qkv_w),    1, "3D",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_WIDTH,
     TSF__BLOCK "width_attention.attention.qkv.weight", "blocks.%d.width_attn.qkv.weight"},
    {TSF__FIELD(w_qkv_b),    1, "3",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_WIDTH | TSF__IF_QKV_BIAS,
     TSF__BLOCK "width_attention.attention.qkv.bias", "blocks.%d.width_attn.qkv.bias"},
    {TSF__FIELD(w_proj_w),   1, "DD",   TSF__MATRIX, TSF__TRUNC,  TSF__IF_WIDTH,
     TSF__BLOCK "width_attention.output.dense.weight", "blocks.%d.width_attn.proj.weight"},
    {TSF__FIELD(w_proj_b),   1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_WIDTH,
     TSF__BLOCK "width_attention.output.dense.bias", "blocks.%d.width_attn.proj.bias"},
    {TSF__FIELD(w_fc_w),     1, "DD",   TSF__MATRIX, TSF__ZEROS,  TSF__IF_WIDTH,
     TSF__BLOCK "width_dense.weight", "blocks.%d.width_fc.weight"},
    {TSF__FIELD(w_fc_b),     1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_WIDTH,
     TSF__BLOCK "width_dense.bias", "blocks.%d.width_fc.bias"},
    {TSF__FIELD(ln1_w),      1, "D",    TSF__NORM,   TSF__ONES,   TSF__ALWAYS,
     TSF__BLOCK "layernorm_before.weight", "blocks.%d.norm1.weight"},
    {TSF__FIELD(ln1_b),      1, "D",    TSF__NORM,   TSF__ZEROS,  TSF__ALWAYS,
     TSF__BLOCK "layernorm_before.bias", "blocks.%d.norm1.bias"},
    {TSF__FIELD(qkv_w),      1, "3D",   TSF__MATRIX, TSF__TRUNC,  TSF__ALWAYS,
     TSF__BLOCK "attention.attention.qkv.weight", "blocks.%d.attn.qkv.weight"},
    {TSF__FIELD(qkv_b),      1, "3",    TSF__BIAS,   TSF__ZEROS,  TSF__IF_QKV_BIAS,
     TSF__BLOCK "attention.attention.qkv.bias", "blocks.%d.attn.qkv.bias"},
    {TSF__FIELD(proj_w),     1, "DD",   TSF__MATRIX, TSF__TRUNC,  TSF__ALWAYS,
     TSF__BLOCK "attention.output.dense.weight", "blocks.%d.attn.proj.weight"},
    {TSF__FIELD(proj_b),     1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__ALWAYS,
     TSF__BLOCK "attention.output.dense.bias", "blocks.%d.attn.proj.bias"},
    {TSF__FIELD(ln2_w),      1, "D",    TSF__NORM,   TSF__ONES,   TSF__ALWAYS,
     TSF__BLOCK "layernorm_after.weight", "blocks.%d.norm2.weight"},
    {TSF__FIELD(ln2_b),      1, "D",    TSF__NORM,   TSF__ZEROS,  TSF__ALWAYS,
     TSF__BLOCK "layernorm_after.bias", "blocks.%d.norm2.bias"},
    {TSF__FIELD(fc1_w),      1, "HD",   TSF__MATRIX, TSF__TRUNC,  TSF__ALWAYS,
     TSF__BLOCK "intermediate.dense.weight", "blocks.%d.mlp.fc1.weight"},
    {TSF__FIELD(fc1_b),      1, "H",    TSF__BIAS,   TSF__ZEROS,  TSF__ALWAYS,
     TSF__BLOCK "intermediate.dense.bias", "blocks.%d.mlp.fc1.bias"},
    {TSF__FIELD(fc2_w),      1, "DH",   TSF__MATRIX, TSF__TRUNC,  TSF__ALWAYS,
     TSF__BLOCK "output.dense.weight", "blocks.%d.mlp.fc2.weight"},
    {TSF__FIELD(fc2_b),      1, "D",    TSF__BIAS,   TSF__ZEROS,  TSF__ALWAYS,
     TSF__BLOCK "output.dense.bias", "blocks.%d.mlp.fc2.bias"},
    {TSF__FIELD(lnf_w),      0, "D",    TSF__NORM,   TSF__ONES,   TSF__ALWAYS,
     "timesformer.layernorm.weight", "norm.weight"},
    {TSF__FIELD(lnf_b),      0, "D",    TSF__NORM,   TSF__ZEROS,  TSF__ALWAYS,
     "timesformer.layernorm.bias", "norm.bias"},
    {TSF__FIELD(head_w),     0, "KD",   TSF__MATRIX, TSF__TRUNC,  TSF__ALWAYS,
     "classifier.weight", "head.weight"},
    {TSF__FIELD(head_b),     0, "K",    TSF__BIAS,   TSF__ZEROS,  TSF__ALWAYS,
     "classifier.bias", "head.bias"},
    /* clang-format on */
};

/* The size of shape letter d under config c (see the table). */
static long long tsf__param_dim(const tsf_config *c, char d) {
    long long G = c->image_size / c->patch_size; /* the position grid's side */
    switch (d) {
    case 'D':
        return c->dim;
    case '3':
        return 3LL * c->dim;
    case 'H':
        return tsf__hidden(c);
    case 'K':
        return c->classes;
    case 'C':
        return c->channels;
    case 'P':
        return c->patch_size;
    case 'Q':
        return 1 + G * G;
    case 'T':
        return c->frames;
    default:
        return 1;
    }
}

/* 1 if parameter f exists under config c. */
static int tsf__param_exists(const tsf_config *c, int f) {
    int when = tsf__param_table[f].when, a = c->attention;
    return !((when & TSF__IF_POS) && c->pos_embed == TSF_POS_NONE) &&
           !((when & TSF__IF_TIME) &&
             (a == TSF_ATTN_SPACE || c->pos_embed != TSF_POS_SPACE_TIME)) &&
           !((when & TSF__IF_TEMPORAL) && a != TSF_ATTN_DIVIDED && a != TSF_ATTN_AXIAL) &&
           !((when & TSF__IF_LOCAL) && a != TSF_ATTN_LOCAL_GLOBAL) &&
           !((when & TSF__IF_WIDTH) && a != TSF_ATTN_AXIAL) &&
           !((when & TSF__IF_QKV_BIAS) && c->no_qkv_bias);
}

/* ---- the size tables --------------------------------------------------------------------- */
/* Elements of every tensor of tsf_params, in struct order (0: absent). Computed in double so
   that a hostile config cannot overflow; callers check the total against TSF__MAX_FLOATS. */
static void tsf__param_sizes(const tsf_config *c, double s[TSF_NUM_PARAMS]) {
    int f, k;
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const struct tsf__param_row *row = &tsf__param_table[f];
        s[f] = tsf__param_exists(c, f) ? (row->per_block ? c->depth : 1) : 0;
        for (k = 0; row->shape[k]; k++) s[f] *= (double)tsf__param_dim(c, row->shape[k]);
    }
}

/* The gradients' sizes: the parameters', or with fused (cfg.fused_sgd) one block's for the
   per-block tensors (tsf_model_backward_sgd reuses them block after block). */
static void tsf__grad_sizes(const tsf_config *c, int fused, double s[TSF_NUM_PARAMS]) {
    int f;
    tsf__param_sizes(c, s);
    for (f = 0; f < TSF_NUM_PARAMS && fused; f++)
        if (tsf__param_table[f].per_block) s[f] /= c->depth;
}

/* ---- the schemes: which tokens attend to which -------------------------------------------
   space_only and joint_space_time attend over the rows as they lie: a frame's 1+N rows, or a
   clip's 1+N*T (grouping ROWS). The other three run a block as steps over groupings of a
   clip's N*T patch tokens (token (n, t), n = i*Wp + j the patch's row i and column j, is row
   1 + n*T + t of the clip; docs/model.md section 4):
       divided_space_time    side TIME,              main SPACE
       sparse_local_global   side WINDOW,            main STRIDE
       axial                 side TIME, side WIDTH,  main HEIGHT
   A side step attends within its sequences of patch tokens and adds the result, through its
   own dense layer, to the patch rows; the cls row passes it unchanged. The main step puts a
   copy of the cls row z0 in front of each of its sequences, adds the patch outputs to the
   patch rows, and the mean of the G cls outputs to z0. A grouping is G sequences a clip in a
   fixed order, member m of sequence g being the token tsf__seq_token gives; a step's
   sequences lie clip after clip, in that order. */
enum {
    TSF__G_ROWS,   /* the rows as they lie (space_only, joint)                     */
    TSF__G_TIME,   /* a sequence a patch: its T frames                             */
    TSF__G_SPACE,  /* a sequence a frame: its N patches                            */
    TSF__G_WINDOW, /* a sequence a quarter of the grid (cut at ceil(Hp/2), ceil(Wp/2)),
                      all T frames: top-left, top-right, bottom-left, bottom-right      */
    TSF__G_STRIDE, /* a sequence a parity class (t, i, j mod 2), in lexicographic order  */
    TSF__G_WIDTH,  /* a sequence a (frame, patch row): Wp patches                      */
    TSF__G_HEIGHT  /* a sequence a (frame, patch column): Hp patches                   */
};

/* The steps of attention scheme a: its side groupings (returns how many) and its main one. */
static int tsf__scheme(int a, int side[2], int *main_grouping) {
    side[0] = side[1] = -1;
    switch (a) {
    case TSF_ATTN_DIVIDED:
        side[0] = TSF__G_TIME, *main_grouping = TSF__G_SPACE;
        return 1;
    case TSF_ATTN_LOCAL_GLOBAL:
        side[0] = TSF__G_WINDOW, *main_grouping = TSF__G_STRIDE;
        return 1;
    case TSF_ATTN_AXIAL:
        side[0] = TSF__G_TIME, side[1] = TSF__G_WIDTH, *main_grouping = TSF__G_HEIGHT;
        return 2;
    default:
        *main_grouping = TSF__G_ROWS;
        return 0;
    }
}

/* Window g: patch rows [i0, i1) and columns [j0, j1). A grid one patch high or wide has no
   second row or column of windows. */
static void tsf__window(int g, int Hp, int Wp, int *i0, int *i1, int *j0, int *j1) {
    int nc = tsf__min(Wp, 2), h = (Hp + 1) / 2, w = (Wp + 1) / 2;
    *i0 = g / nc ? h : 0, *i1 = g / nc ? Hp : h;
    *j0 = g % nc ? w : 0, *j1 = g % nc ? Wp : w;
}

/* Parity class g: frames t = a mod 2, rows i = b mod 2, columns j = c mod 2 (a class that
   would be empty, because T, Hp or Wp is 1, is not counted). */
static void tsf__parity(int g, int T, int Hp, int Wp, int *a, int *b, int *c) {
    int nb = tsf__min(Hp, 2), nc = tsf__min(Wp, 2);
    (void)T;
    *a = g / (nb * nc), *b = g / nc % nb, *c = g % nc;
}

/* Sequences a clip in grouping k (not ROWS). */
static int tsf__seq_count(int k, int T, int Hp, int Wp) {
    switch (k) {
    case TSF__G_TIME:
        return Hp * Wp;
    case TSF__G_SPACE:
        return T;
    case TSF__G_WINDOW:
        return tsf__min(Hp, 2) * tsf__min(Wp, 2);
    case TSF__G_STRIDE:
        return tsf__min(T, 2) * tsf__min(Hp, 2) * tsf__min(Wp, 2);
    case TSF__G_WIDTH:
        return T * Hp;
    case TSF__G_HEIGHT:
        return T * Wp;
    default:
        return 0;
    }
}

/* Patch tokens in sequence g of grouping k. */
static int tsf__seq_len(int k, int g, int T, int Hp, int Wp) {
    int i0, i1, j0, j1, a, b, c;
    switch (k) {
    case TSF__G_TIME:
        return T;
    case TSF__G_SPACE:
        return Hp * Wp;
    case TSF__G_WINDOW:
        tsf__window(g, Hp, Wp, &i0, &i1, &j0, &j1);
        return (i1 - i0) * (j1 - j0) * T;
    case TSF__G_STRIDE:
        tsf__parity(g, T, Hp, Wp, &a, &b, &c);
        return (T - a + 1) / 2 * ((Hp - b + 1) / 2) * ((Wp - c + 1) / 2);
    case TSF__G_WIDTH:
        return Wp;
    case TSF__G_HEIGHT:
        return Hp;
    default:
        return 0;
    }
}

/* Member m of sequence g of grouping k: the token index n*T + t (row 1 + n*T + t of its
   clip). Members are in increasing token order. */
static int tsf__seq_token(int k, int g, int m, int T, int Hp, int Wp) {
    int i0, i1, j0, j1, a, b, c, q, nt, w;
    switch (k) {
    case TSF__G_TIME: /* patch g, frame m */
        return g * T + m;
    case TSF__G_SPACE: /* frame g, patch m */
        return m * T + g;
    case TSF__G_WINDOW: /* patch m / T of the window, row-major; frame m % T */
        tsf__window(g, Hp, Wp, &i0, &i1, &j0, &j1);
        q = m / T, w = j1 - j0;
        return ((i0 + q / w) * Wp + j0 + q % w) * T + m % T;
    case TSF__G_STRIDE: /* patch m / nt of the class, row-major; its frame m % nt */
        tsf__parity(g, T, Hp, Wp, &a, &b, &c);
        nt = (T - a + 1) / 2, w = (Wp - c + 1) / 2, q = m / nt;
        return ((b + 2 * (q / w)) * Wp + c + 2 * (q % w)) * T + a + 2 * (m % nt);
    case TSF__G_WIDTH: /* frame g / Hp, patch row g % Hp, column m */
        return ((g % Hp) * Wp + m) * T + g / Hp;
    case TSF__G_HEIGHT: /* frame g / Wp, patch column g % Wp, row m */
        return (m * Wp + g % Wp) * T + g / Wp;
    default:
        return 0;
    }
}

/* The shape of one forward pass: rows and sequences of every attention (see tsf_acts). */
typedef struct tsf__shape {
    int B, T, H, W, Hp, Wp, N;
    int nside, side[2], main; /* the scheme's steps: tsf__scheme             */
    long R;                   /* token rows                                         */
    long Rt;                  /* rows of a side step's sequences, B*N*T (else 0)     */
    long Rs;                  /* rows of the main step's sequences, B*(N*T + G) (else 0) */
    long RA;                  /* rows of the block's main attention (Rs, or R)       */
    long SA, SL;              /* its sequences, and their length (0: not all alike)  */
    long SM;                  /* samples of the MLP's drop path (B*T space_only, B)  */
    long SK;                  /* a block's drop-path scales: side steps' sequences, SA, SM */
    int train;                /* the activations backward needs are kept           */
    int recompute;            /* ... only each block's input (train: m->recompute)  */
    int keep;                 /* ... and every block's norms and GELU (keep_acts)   */
    int keep_att;             /* every block's attention probabilities are kept      */
    int head;                 /* the last block computes the head's rows alone        */
} tsf__shape;

static tsf__shape tsf__shape_of(const tsf_config *c, int B, int T, int H, int W) {
    tsf__shape s;
    int k;
    s.B = B, s.T = T, s.H = H, s.W = W;
    s.Hp = H / c->patch_size, s.Wp = W / c->patch_size, s.N = s.Hp * s.Wp;
    s.Rt = s.Rs = 0;
    s.train = 1, s.recompute = s.keep = s.keep_att = s.head = 0; /* see tsf__model_shape */
    s.SM = c->attention == TSF_ATTN_SPACE ? (long)B * T : B;
    if (c->attention == TSF_ATTN_SPACE) {
        s.R = (long)B * T * (1 + s.N), s.RA = s.R, s.SA = (long)B * T, s.SL = 1 + s.N;
    } else {
        s.R = (long)B * (1 + (long)s.N * T), s.RA = s.R, s.SA = B, s.SL = 1 + (long)s.N * T;
    }
    s.nside = tsf__scheme(c->attention, s.side, &s.main);
    if (s.nside) {
        int G = tsf__seq_count(s.main, T, s.Hp, s.Wp), g;
        s.Rt = (long)B * s.N * T, s.Rs = (long)B * ((long)s.N * T + G), s.RA = s.Rs;
        s.SA = (long)B * G, s.SL = 1 + tsf__seq_len(s.main, 0, T, s.Hp, s.Wp);
        for (g = 1; g < G; g++)
            if (1 + tsf__seq_len(s.main, g, T, s.Hp, s.Wp) != s.SL) s.SL = 0;
    }
    s.SK = s.SA + s.SM; /* drop-path scales: the main step's, the MLP's, each side step's */
    for (k = 0; k < s.nside; k++) s.SK += (long)B * tsf__seq_count(s.side[k], T, s.Hp, s.Wp);
    return s;
}

/* Rows of sequence g of a step over grouping k (main: with its cls copy). */
static long tsf__seq_rows(const tsf__shape *s, int k, int g, int main_step) {
    return k == TSF__G_ROWS ? s->SL : tsf__seq_len(k, g, s->T, s->Hp, s->Wp) + main_step;
}

/* Sequences of that step, all clips. */
static long tsf__seqs(const tsf__shape *s, int k) {
    return k == TSF__G_ROWS ? s->SA : (long)s->B * tsf__seq_count(k, s->T, s->Hp, s->Wp);
}

/* The sum over the step's sequences of their squared lengths (attention matrices' sizes). */
static double tsf__seq_sq(const tsf__shape *s, int k, int main_step) {
    double sum = 0;
    long q, G = tsf__seqs(s, k) / s->B;
    for (q = 0; q < G; q++)
        sum += (double)tsf__seq_rows(s, k, (int)q, main_step) *
               (double)tsf__seq_rows(s, k, (int)q, main_step);
    return sum * s->B;
}

#define TSF__NUM_ACTS ((int)(sizeof(tsf_acts) / sizeof(float *)))

/* tsf_acts fields t_in .. keep are per block, stacked with a leading LS. */
#define TSF__FIRST_LAYER_ACT 4
#define TSF__LAST_LAYER_ACT 27

#define TSF__NUM_GACTS ((int)(sizeof(tsf_grad_acts) / sizeof(float *)))

/* The model's memory (sizes, layout, creation) is plumbing: it follows the training
   section, under MODEL MEMORY. What the model code needs of it: */
static void tsf__act_sizes(const tsf_config *c, const tsf__shape *s, double a[], int nl[]);
static tsf_status tsf__model_shape(const tsf_model *m, int B, int T, int H, int W, tsf__shape *s);
static double tsf__layout(float **views, const double *sizes, int n, float *base);
static void tsf__pack_weights(tsf_model *m);

/* ---- token grouping ---------------------------------------------------------------------- */
/* Nearest-neighbour resize index, as PyTorch's F.interpolate(mode='nearest') computes it in
   float32 in the original: output k of out reads input min(floor(k * (in/out)), in-1). */
static int tsf__nearest(int k, int out, int in) {
    float scale = (float)in / (float)out;
    int src = (int)floorf((float)k * scale);
    return src > in - 1 ? in - 1 : src;
}

/* Row of the position table used by patch n of an Hp x Wp grid: the table is used as is
   when its row count matches 1 + N (the original decides on counts), otherwise its G x G
   grid (G = S0/P patches a side) is resized to Hp x Wp, rows and columns independently. */
static int tsf__pos_row(const tsf_config *c, int n, int Hp, int Wp) {
    int G = c->image_size / c->patch_size;
    if (Hp * Wp == G * G) return 1 + n;
    return 1 + tsf__nearest(n / Wp, Hp, G) * G + tsf__nearest(n % Wp, Wp, G);
}

/* Build the tokens entering block 0 from the patch embeddings // (B*T*N, D):
   cls = cls_token + pos[0]; patch (b, t, n) gets pos'[1+n], plus temb'[t] unless space_only. */
static void tsf__tokens_forward(float *x0, const float *patches, const tsf_params *p,
                                const tsf_config *c, const tsf__shape *s) {
    int D = c->dim, b, t, n, i;
    for (b = 0; b < s->B; b++)
        for (t = 0; t < s->T; t++) {
            int tr = tsf__nearest(t, s->T, c->frames); /* time row (identity when T == T0) */
            for (n = -1; n < s->N; n++) {              /* n = -1: the cls token */
                float *dst;
                const float *src =
                    n < 0 ? p->cls_token : patches + (((size_t)b * s->T + t) * s->N + n) * D;
                const float *pos = /* NULL with pos_embed none */
                    p->pos_embed
                        ? p->pos_embed + (size_t)(n < 0 ? 0 : tsf__pos_row(c, n, s->Hp, s->Wp)) * D
                        : NULL;
                const float *tim = /* NULL in space_only and with pos_embed space or none */
                    p->time_embed && n >= 0 ? p->time_embed + (size_t)tr * D : NULL;
                if (c->attention == TSF_ATTN_SPACE)
                    dst = x0 + (((size_t)b * s->T + t) * (1 + s->N) + 1 + n) * D;
                else if (n < 0 && t > 0)
                    continue; /* one cls per clip, without time embedding */
                else
                    dst = x0 + ((size_t)b * (1 + (size_t)s->N * s->T) +
                                (n < 0 ? 0 : 1 + (size_t)n * s->T + t)) *
                                   D;
                for (i = 0; i < D; i++)
                    dst[i] = src[i] + (pos ? pos[i] : 0.0f) + (tim ? tim[i] : 0.0f);
            }
        }
}

/* The runs of a step's sequences of equal length: from sequence *q, the run's sequences
   (*count) and rows each (*len); *q moves past it. Returns 0 when none is left. The
   attention kernel is called once a run: once a step, unless the grid cuts into windows or
   parity classes of different sizes. */
static int tsf__next_run(const tsf__shape *s, int k, int main_step, long *q, long *count,
                         long *len) {
    long n = tsf__seqs(s, k), G = n / s->B, e = *q + 1;
    if (*q >= n) return 0;
    *len = tsf__seq_rows(s, k, (int)(*q % G), main_step);
    while (e < n && tsf__seq_rows(s, k, (int)(e % G), main_step) == *len) e++;
    *count = e - *q, *q = e;
    return 1;
}

/* The steps' gathers and residuals (docs/model.md section 4): sequences are gathered from
   the token rows x // (B, 1+N*T, D) into a step's buffer, clip after clip, and their results
   added back where the tokens came from. Row of clip b's cls token, and of member m of its
   sequence g: */
static size_t tsf__cls_row(const tsf__shape *s, long b) {
    return (size_t)b * (1 + (size_t)s->N * s->T);
}
static size_t tsf__token_row(const tsf__shape *s, int k, int b, int g, int m) {
    return tsf__cls_row(s, b) + 1 + (size_t)tsf__seq_token(k, g, m, s->T, s->Hp, s->Wp);
}

/* Sequence q (clip q / G, group q % G of grouping k), its len members: seq // (len, D) = their
   token rows of x (gather), or out's token rows = base's + seq's (scatter; out may be base).
   Sequences own disjoint token rows, so the steps below run them in parallel, run by run
   (tsf__next_run: sequence q of a run starting at sequence q0 and row r of the step's buffer
   starts at row r + (q - q0) * len), each row written once, with the same bits for any
   thread count. */
static void tsf__seq_gather(float *seq, const float *x, const tsf__shape *s, int k, long q,
                            long len, int D) {
    int G = tsf__seq_count(k, s->T, s->Hp, s->Wp), m;
    for (m = 0; m < len; m++)
        memcpy(seq + (size_t)m * D, x + tsf__token_row(s, k, (int)(q / G), (int)(q % G), m) * D,
               (size_t)D * sizeof(float));
}
static void tsf__seq_scatter(float *out, const float *base, const float *seq, const tsf__shape *s,
                             int k, long q, long len, int D) {
    int G = tsf__seq_count(k, s->T, s->Hp, s->Wp), m;
    for (m = 0; m < len; m++) {
        size_t r = tsf__token_row(s, k, (int)(q / G), (int)(q % G), m) * D;
        tsf__add_or_mul_n(out + r, base + r, seq + (size_t)m * D, (size_t)D, 1);
    }
}

/* A side step's sequences // (Rt, D): the patch tokens of x, grouped by k (no cls). */
static void tsf__side_gather_forward(float *seqs, const float *x, const tsf__shape *s, int k,
                                     int D) {
    long q = 0, count, len, r = 0, e; /* r: rows of seqs before the run */
    for (; tsf__next_run(s, k, 0, &q, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++)
            tsf__seq_gather(seqs + (size_t)(r + e * len) * D, x, s, k, q - count + e, len, D);
    }
}

/* A side step's residual: U = x + q on the patch rows (q // (Rt, D), the step's branch in
   its sequences' order); the cls rows pass unchanged. */
static void tsf__side_residual_forward(float *u, const float *x, const float *q,
                                       const tsf__shape *s, int k, int D) {
    long n = 0, count, len, r = 0, e, b;
    for (b = 0; b < s->B; b++) {
        size_t cls = tsf__cls_row(s, b) * D;
        memcpy(u + cls, x + cls, (size_t)D * sizeof(float));
    }
    for (; tsf__next_run(s, k, 0, &n, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++)
            tsf__seq_scatter(u, x, q + (size_t)(r + e * len) * D, s, k, n - count + e, len, D);
    }
}

/* The main step's sequences // (Rs, D): [z0, its members] for every sequence of grouping
   s->main, z0 the cls row of u (which the side steps left as the block received it). */
static void tsf__main_gather_forward(float *seqs, const float *u, const tsf__shape *s, int D) {
    long q = 0, count, len, r = 0, e, G = tsf__seqs(s, s->main) / s->B; /* len: 1 + members */
    for (; tsf__next_run(s, s->main, 1, &q, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++) {
            float *seq = seqs + (size_t)(r + e * len) * D;
            long qe = q - count + e;
            memcpy(seq, u + tsf__cls_row(s, qe / G) * D, (size_t)D * sizeof(float));
            tsf__seq_gather(seq + D, u, s, s->main, qe, len - 1, D);
        }
    }
}

/* The main step's residual: V = U + Q for patch tokens (Q // (Rs, D), the attention branch
   in sequence order), and V cls = z0 + the mean of the G sequences' cls rows of Q (in
   clsmean // (B, D) first, as tsf_mean_forward makes it). first (the last block): Q // (B*G,
   D) holds the sequences' cls rows alone, and V // (B, D) gets the cls rows alone. */
static void tsf__main_residual_forward(float *v, const float *u, const float *q, float *clsmean,
                                       const tsf__shape *s, int first, int D) {
    int b, g, i, k = s->main, G = tsf__seq_count(k, s->T, s->Hp, s->Wp);
    long n = 0, count, len, r = 0, e;
    size_t NT = (size_t)s->N * s->T;
    float inv = 1.0f / (float)G;
    const float *row;
    for (b = 0, row = q; b < s->B; b++) { /* the mean first, in sequence order */
        float *o = clsmean + (size_t)b * D;
        for (i = 0; i < D; i++) o[i] = 0.0f;
        for (g = 0; g < G;
             row += (first ? 1 : tsf__seq_len(k, g, s->T, s->Hp, s->Wp) + 1) * (size_t)D, g++)
            tsf__add_or_mul_n(o, o, row, (size_t)D, 1);
        for (i = 0; i < D; i++) o[i] *= inv;
    }
    for (b = 0; b < s->B; b++)
        tsf__add_or_mul_n(v + b * (first ? 1 : 1 + NT) * D, u + b * (1 + NT) * D,
                          clsmean + (size_t)b * D, (size_t)D, 1);
    for (; !first && tsf__next_run(s, k, 1, &n, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++) /* the members, past each sequence's cls row */
            tsf__seq_scatter(v, u, q + (size_t)(r + e * len + 1) * D, s, k, n - count + e, len - 1,
                             D);
    }
}

/* out // (n, D) = x's rows 0, stride, 2*stride, ... + b // (n, D): the residual of the cls
   rows alone, in the last block of a scheme without side steps. */
static void tsf__rows_add(float *out, const float *x, size_t stride, const float *b, size_t n,
                          int D) {
    size_t q;
    for (q = 0; q < n; q++)
        tsf__add_or_mul_n(out + q * D, x + q * stride * D, b + q * D, (size_t)D, 1);
}

/* x // (n, D) spread out to rows 0, stride, 2*stride, ... of x // (n*stride, D), the rows
   between set to 0 (the backward of the last block's cls rows, s->head). Row q moves to row
   q*stride >= q, so going from the last row down nothing is overwritten before it moved. */
static void tsf__rows_spread(float *x, size_t n, size_t stride, int D) {
    size_t q;
    for (q = n; stride > 1 && q-- > 0;) {
        if (q) memcpy(x + q * stride * D, x + q * D, (size_t)D * sizeof(float));
        memset(x + (q * stride + 1) * D, 0, (stride - 1) * (size_t)D * sizeof(float));
    }
}

/* Rows between the cls rows the head reads in the last block's output: 1 when that block
   computed those rows alone (s->head), else R/SM. */
static size_t tsf__head_stride(const tsf__shape *s) { return s->head ? 1 : (size_t)(s->R / s->SM); }

/* The attention of a step over grouping k: out // (rows, D) and lse (NULL: not kept) from
   qkv // (rows, 3D) of its sequences. first: only each sequence's first row (the main step's
   cls copy) as a query, out // (sequences, D) (the last block, tsf__block_forward). */
static void tsf__step_attention_forward(float *out, float *lse, const float *qkv,
                                        const tsf__shape *s, int k, int main_step, int first, int D,
                                        int NH, tsf__work w) {
    long q = 0, count, len, r = 0, ro = 0; /* rows of qkv, and of out, before this run */
    for (; tsf__next_run(s, k, main_step, &q, &count, &len);
         r += count * len, ro += count * (first ? 1 : len))
        tsf__attention_fused_forward(out + (size_t)ro * D, lse ? lse + (size_t)ro * NH : NULL,
                                     qkv + (size_t)r * 3 * D, (int)count, (int)len,
                                     first ? 1 : (int)len, D, NH, w);
}

/* Its probabilities, to be looked at: att holds, sequence after sequence, NH (len, len). */
static void tsf__step_attention_probs(float *att, const float *qkv, const tsf__shape *s, int k,
                                      int main_step, int D, int NH) {
    long q = 0, count, len, r = 0;
    for (; tsf__next_run(s, k, main_step, &q, &count, &len); r += count * len) {
        tsf__attention_probs(att, qkv + (size_t)r * 3 * D, (int)count, (int)len, D, NH);
        att += (size_t)count * NH * len * len;
    }
}

/* Scale the rows of x, a step's sequences, sequence by sequence (forward and backward);
   first: x holds each sequence's first row alone (tsf__step_attention_forward). */
static void tsf__drop_path_seqs(float *x, const float *keep, const tsf__shape *s, int k,
                                int main_step, int first, int D) {
    long q, n = tsf__seqs(s, k), G = n / s->B;
    size_t i, rows;
    for (q = 0; q < n; q++, x += rows * D) {
        rows = first ? 1 : (size_t)tsf__seq_rows(s, k, (int)(q % G), main_step);
        if (keep[q] != 1.0f)
            for (i = 0; i < rows * D; i++) x[i] *= keep[q];
    }
}

/* ---- one block's views ------------------------------------------------------------------- */

/* The weights (or gradients: same layout) of block l: every per-block pointer advanced to
   that block, so w.qkv_w is this block's (3D, D) matrix. */
static tsf_params tsf__layer_at(const tsf_params *p, const double s[TSF_NUM_PARAMS],
                                const tsf_config *c, int l) {
    tsf_params w = *p;
    float **v = (float **)&w;
    int f;
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        if (v[f] && tsf__param_table[f].per_block) v[f] += (size_t)l * (size_t)(s[f] / c->depth);
    return w;
}
static tsf_params tsf__layer_params(const tsf_params *p, const tsf_config *c, int l) {
    double s[TSF_NUM_PARAMS];
    tsf__param_sizes(c, s);
    return tsf__layer_at(p, s, c, l);
}

/* The packed copy's sizes (tsf_model_pack_weights): the matrices, (out, in) weights that
   forward passes multiply by as y = x . W^T, each in tsf_matmul_pack_b's layout; 0 for the
   other tensors. */
static void tsf__packed_sizes(const tsf_config *c, double s[TSF_NUM_PARAMS]) {
    int f;
    tsf__param_sizes(c, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const struct tsf__param_row *row = &tsf__param_table[f];
        if (s[f] > 0 && row->kind == TSF__MATRIX && strlen(row->shape) == 2)
            s[f] = (row->per_block ? c->depth : 1) *
                   (double)tsf_matmul_packed_b_floats((int)tsf__param_dim(c, row->shape[0]),
                                                      (int)tsf__param_dim(c, row->shape[1]));
        else
            s[f] = 0;
    }
}

/* Block l's packed weights (the head's with any l), or all NULL: none packed, or stale. */
static tsf_params tsf__layer_packed(const tsf_model *m, int l) {
    double s[TSF_NUM_PARAMS];
    tsf_params none;
    if (!m->packed_memory || m->packed_stale) {
        memset(&none, 0, sizeof none);
        return none;
    }
    tsf__packed_sizes(&m->cfg, s);
    return tsf__layer_at(&m->packed, s, &m->cfg, l);
}

/* The activations of block l, the same way. */
static tsf_acts tsf__layer_acts(const tsf_acts *a, const tsf_config *c, const tsf__shape *sh,
                                int l) {
    double s[64];
    tsf_acts t = *a;
    float **v = (float **)&t;
    int k;
    int nl[64];
    tsf__act_sizes(c, sh, s, nl);
    for (k = TSF__FIRST_LAYER_ACT; k <= TSF__LAST_LAYER_ACT; k++) /* one block's: nothing */
        if (v[k] && nl[k] > 1) v[k] += (size_t)l * (size_t)(s[k] / nl[k]);
    return t;
}

/* One attention step's weights: its LayerNorm, qkv and output projection, and (side steps)
   the dense layer that adds its result to the patch rows. */
typedef struct tsf__step_weights {
    float *ln_w, *ln_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *fc_w, *fc_b;
} tsf__step_weights;

/* The weights of the side step over grouping k: the eight consecutive tsf_params fields of
   the temporal (t_*), local (l_*) or width (w_*) step. */
static tsf__step_weights tsf__side_weights(const tsf_params *w, int k) {
    tsf__step_weights sw;
    float *const *first = k == TSF__G_WINDOW  ? &w->l_ln_w
                          : k == TSF__G_WIDTH ? &w->w_ln_w
                                              : &w->t_ln_w;
    memcpy(&sw, first, sizeof sw);
    return sw;
}

/* One side step's activations: the t_* tensors and u hold every side step's, one after the
   other; these are step j's. */
typedef struct tsf__side_acts {
    float *in, *ln, *mean, *rstd, *qkv, *lse, *atty, *proj, *u;
} tsf__side_acts;

static tsf__side_acts tsf__side_view(const tsf_acts *t, const tsf__shape *s, const tsf_config *c,
                                     int j) {
    tsf__side_acts v;
    size_t rows = (size_t)j * s->Rt, D = (size_t)c->dim;
    v.in = t->t_in + rows * D, v.ln = t->t_ln + rows * D;
    v.mean = t->t_mean + rows, v.rstd = t->t_rstd + rows;
    v.qkv = t->t_qkv + rows * 3 * D, v.lse = t->t_lse ? t->t_lse + rows * c->heads : NULL;
    v.atty = t->t_atty + rows * D, v.proj = t->t_proj + rows * D;
    v.u = t->u + (size_t)j * s->R * D;
    return v;
}

/* ---- stochastic depth -------------------------------------------------------------------- */
/* Draw block l's drop-path scales (training) or set them to 1: per sequence, keep with
   probability 1 - rate and scale by 1/(1 - rate), rate = drop_path * l / (L-1). */
static void tsf__drop_path_draw(float *keep, size_t n, tsf_model *m, int l, int train) {
    float rate = m->cfg.depth > 1 ? m->drop_path * (float)l / (float)(m->cfg.depth - 1) : 0.0f;
    size_t i;
    for (i = 0; i < n; i++)
        keep[i] = !train || rate <= 0.0f            ? 1.0f
                  : tsf_rng_uniform(&m->rng) < rate ? 0.0f
                                                    : 1.0f / (1.0f - rate);
}

/* Scale the rows of x // (S * rows_per_seq, D) sequence by sequence (forward and backward). */
static void tsf__drop_path_apply(float *x, const float *keep, size_t S, size_t rows_per_seq,
                                 int D) {
    size_t q, i;
    for (q = 0; q < S; q++)
        if (keep[q] != 1.0f)
            for (i = 0; i < rows_per_seq * D; i++) x[q * rows_per_seq * D + i] *= keep[q];
}

/* Dropout of n values of block l: zero with probability m->dropout, else scale by
   1/(1 - dropout). The mask comes from (dropout_seed, l), so backward redraws the very same
   mask and applies it to the gradient: nothing is stored. */
static void tsf__dropout(float *x, size_t n, const tsf_model *m, int l) {
    tsf_rng r;
    float scale = 1.0f / (1.0f - m->dropout);
    size_t i;
    tsf_rng_seed(&r, ((unsigned long long)m->dropout_seed << 16) ^ (unsigned long long)l);
    for (i = 0; i < n; i++) x[i] = tsf_rng_uniform(&r) < m->dropout ? 0.0f : x[i] * scale;
}

/* ---- forward ----------------------------------------------------------------------------- */
/* The model's work space for its products (tsf_matmul_desc.work). */
static tsf__work tsf__model_work(const tsf_model *m) {
    tsf__work w;
    w.p = m->acts.mm_work, w.n = m->act_work_floats;
    return w;
}

/* Block l's forward pass from its input xin // (R, D) to t->out (in inference the same
   buffer: xin is read for the last time before out is written), with its weights w, its
   activations t and its drop-path scales, already drawn, in t->keep (the side steps'
   sequences', the main attention's, the MLP's). Dropout (when the pass drew a seed) and the
   attention probabilities (m->keep_attention) as the model asks.
   The last block computes only what the head reads (s.head, unless m->all_tokens): the head
   takes the cls rows of its output, SM of them, and a cls row depends on the other tokens
   only through the keys and values of the main attention. So the side steps, LN1 and qkv
   run on every row as before, but the attention takes each main sequence's first row (its
   cls copy) alone as a query, and the projection, residual and MLP run on those rows: atty
   // (SA, D), res1 and out // (SM, D). The logits are the same to the bit; the demo's
   2-block models do a quarter to a third less work. */
static void tsf__block_forward(tsf_model *m, const tsf__shape *sp, const tsf_params *wp,
                               const tsf_acts *tp, const float *xin, int l) {
    const tsf_config *c = &m->cfg;
    const tsf_params w = *wp;
    const tsf_acts t = *tp;
    const tsf__shape s = *sp;
    tsf_acts *a = &m->acts;
    int D = c->dim, HM = tsf__hidden(c), NH = c->heads, j;
    size_t R = (size_t)s.R, RA = (size_t)s.RA, Rt = (size_t)s.Rt;
    int h = s.head && l == c->depth - 1; /* the head's rows alone (see above) */
    size_t RQ = h ? (size_t)s.SA : RA, RM = h ? (size_t)s.SM : R; /* the rows computed */
    float eps = c->ln_eps, *keep = t.keep, *tmp = a->scratch;
    const float *x = xin; /* the tokens a step reads: xin, then each side step's U */
    tsf__work mw = tsf__model_work(m);
    const tsf_params pw = tsf__layer_packed(m, l); /* the weights packed, or NULLs */

    /* side steps: U = x + fc(proj(MHSA(LN(sequences of x's patch tokens)))) */
    for (j = 0; j < s.nside; j++) {
        int k = s.side[j];
        tsf__step_weights sw = tsf__side_weights(&w, k), swp = tsf__side_weights(&pw, k);
        tsf__side_acts st = tsf__side_view(&t, &s, c, j);
        tsf__side_gather_forward(st.in, x, &s, k, D);
        tsf_layernorm_forward(st.ln, st.mean, st.rstd, st.in, sw.ln_w, sw.ln_b, (int)Rt, D, eps);
        tsf__linear_forward(st.qkv, st.ln, sw.qkv_w, swp.qkv_w, sw.qkv_b, (int)Rt, D, 3 * D, mw);
        tsf__step_attention_forward(st.atty, st.lse, st.qkv, &s, k, 0, 0, D, NH, mw);
        if (a->t_att && j == 0) /* kept to be looked at (m->keep_attention) */
            tsf__step_attention_probs(a->t_att + (size_t)l * NH * (size_t)tsf__seq_sq(&s, k, 0),
                                      st.qkv, &s, k, 0, D, NH);
        tsf__linear_forward(st.proj, st.atty, sw.proj_w, swp.proj_w, sw.proj_b, (int)Rt, D, D, mw);
        tsf__drop_path_seqs(st.proj, keep, &s, k, 0, 0, D);
        tsf__linear_forward(tmp, st.proj, sw.fc_w, swp.fc_w, sw.fc_b, (int)Rt, D, D, mw);
        tsf__side_residual_forward(st.u, x, tmp, &s, k, D);
        keep += tsf__seqs(&s, k), x = st.u;
    }
    /* the main attention: res1 = x + proj(MHSA(LN1(x))), over the main step's sequences */
    if (s.nside) tsf__main_gather_forward(t.s_in, x, &s, D);
    tsf_layernorm_forward(t.ln1, t.ln1_mean, t.ln1_rstd, s.nside ? t.s_in : x, w.ln1_w, w.ln1_b,
                          (int)RA, D, eps);
    tsf__linear_forward(t.qkv, t.ln1, w.qkv_w, pw.qkv_w, w.qkv_b, (int)RA, D, 3 * D, mw);
    tsf__step_attention_forward(t.atty, t.lse, t.qkv, &s, s.main, 1, h, D, NH, mw);
    if (a->att) /* all of them, from qkv, also in the last block */
        tsf__step_attention_probs(a->att + (size_t)l * NH * (size_t)tsf__seq_sq(&s, s.main, 1),
                                  t.qkv, &s, s.main, 1, D, NH);
    tsf__linear_forward(tmp, t.atty, w.proj_w, pw.proj_w, w.proj_b, (int)RQ, D, D, mw);
    tsf__drop_path_seqs(tmp, keep, &s, s.main, 1, h, D);
    if (s.nside)
        tsf__main_residual_forward(t.res1, x, tmp, tmp + (size_t)s.Rs * D, &s, h, D);
    else if (h) /* res1 // (SM, D) = the cls rows of x + tmp, SA = SM sequences of R/SM rows */
        tsf__rows_add(t.res1, x, R / (size_t)s.SM, tmp, RQ, D);
    else
        tsf_residual_forward(t.res1, x, tmp, R * D);
    keep += s.SA;
    /* MLP: out = res1 + fc2(GELU(fc1(LN2(res1)))), on RM rows */
    tsf_layernorm_forward(t.ln2, t.ln2_mean, t.ln2_rstd, t.res1, w.ln2_w, w.ln2_b, (int)RM, D, eps);
    /* fch: fc1's output for backward, or with keep_acts (nothing to remake from it) GELU' */
    tsf__linear_gelu_forward(t.fch_gelu, t.fch, t.ln2, w.fc1_w, pw.fc1_w, w.fc1_b, (int)RM, D, HM,
                             s.keep, mw);
    if (m->dropout_seed) tsf__dropout(t.fch_gelu, RM * HM, m, l);
    tsf__linear_forward(tmp, t.fch_gelu, w.fc2_w, pw.fc2_w, w.fc2_b, (int)RM, HM, D, mw);
    tsf__drop_path_apply(tmp, keep, (size_t)s.SM, RM / (size_t)s.SM, D);
    tsf_residual_forward(t.out, t.res1, tmp, RM * D);
}

/* The forward pass; train = 1 draws drop paths and dropout. */
static tsf_status tsf__forward(tsf_model *m, const float *x, int B, int T, int H, int W,
                               int train) {
    const tsf_config *c = &m->cfg;
    const tsf_params *p = &m->params;
    tsf_acts *a = &m->acts;
    int D = c->dim, K = c->classes, l;
    float eps = c->ln_eps;
    tsf__shape s;
    tsf_status st;
    const float *xin;
    if (!x) return TSF_ERR_ARG;
    if ((st = tsf_model_reserve(m, B, T, H, W)) != TSF_OK) return st;
    tsf__model_shape(m, B, T, H, W, &s);                           /* what reserve laid out */
    m->has_dlogits = 0, m->act_all_tokens = !s.head;               /* backward follows this pass */
    if (m->packed_memory && m->packed_stale) tsf__pack_weights(m); /* after SGD steps */
    m->dropout_seed = train && m->dropout > 0.0f ? tsf_rng_u32(&m->rng) | 1u : 0;

    /* embeddings: patches, then cls, position and time embeddings, in the variant's order */
    tsf_patch_embed_forward(a->patches, a->cols, x, p->patch_w, p->patch_b, B, c->channels, T, H, W,
                            c->patch_size, D);
    tsf__tokens_forward(a->x0, a->patches, p, c, &s);

    xin = a->x0;
    for (l = 0; l < c->depth; l++) {
        tsf_params w = tsf__layer_params(p, c, l); /* this block's weights  */
        tsf_acts t = tsf__layer_acts(a, c, &s, l); /* and its activations   */
        tsf__drop_path_draw(t.keep, (size_t)s.SK, m, l, train);
        tsf__block_forward(m, &s, &w, &t, xin, l);
        xin = t.out;
    }

    /* head: the cls token (space_only: averaged over frames), final LayerNorm, classifier;
       the last block's output holds the SM cls rows alone (s.head) or every row */
    tsf_mean_forward(a->pooled, xin, B, (int)(s.SM / B), D, tsf__head_stride(&s) * D);
    tsf_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->pooled, p->lnf_w, p->lnf_b, B, D,
                          eps);
    tsf__linear_forward(a->logits, a->lnf, p->head_w, tsf__layer_packed(m, 0).head_w, p->head_b, B,
                        D, K, tsf__model_work(m));
    return TSF_OK;
}

TSFDEF tsf_status tsf_model_forward(tsf_model *m, const float *x, int B, int T, int H, int W,
                                    float *logits) {
    tsf_status st = tsf__forward(m, x, B, T, H, W, 0);
    if (st == TSF_OK && logits)
        memcpy(logits, m->acts.logits, (size_t)B * m->cfg.classes * sizeof(float));
    return st;
}

TSFDEF tsf_status tsf_model_forward_u8(tsf_model *m, const unsigned char *rgb, int B, int T, int H,
                                       int W, float *logits) {
    const tsf_config *c = &m->cfg;
    size_t plane = (size_t)H * W, i;
    int b, t, ch;
    tsf_status st;
    if (!rgb || c->channels != 3) return TSF_ERR_ARG;
    st = tsf_model_reserve(m, B, T, H, W);
    if (st != TSF_OK) return st;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) /* model channel ch reads RGB channel ch, or 2-ch for BGR */
            for (ch = 0; ch < 3; ch++) {
                const unsigned char *src =
                    rgb + ((size_t)b * T + t) * plane * 3 + (c->bgr ? 2 - ch : ch);
                float *dst = m->acts.input + (((size_t)b * 3 + ch) * T + t) * plane;
                float scale = 1.0f / (255.0f * c->std[ch]), shift = c->mean[ch] / c->std[ch];
                for (i = 0; i < plane; i++) dst[i] = (float)src[i * 3] * scale - shift;
            }
    return tsf_model_forward(m, m->acts.input, B, T, H, W, logits);
}

/* ==========================================================================================
   TRAINING: loss, backward (the forward in reverse), SGD, learning-rate schedules
   ========================================================================================== */

TSFDEF tsf_status tsf_model_train_init(tsf_model *m) {
    double s[TSF_NUM_PARAMS];
    size_t bytes = m->param_floats * sizeof(float), gbytes;
    if (!m->param_memory) return TSF_ERR_ARG;
    if (!m->grad_memory) { /* the gradient layout is chosen once, here */
        int fused = m->cfg.fused_sgd != 0;
        tsf__grad_sizes(&m->cfg, fused, s);
        gbytes = (size_t)tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL) * sizeof(float);
        m->grad_memory = (float *)TSF_MALLOC(gbytes, m->cfg.alloc_ctx);
        m->momentum_memory = (float *)TSF_MALLOC(bytes, m->cfg.alloc_ctx);
        if (!m->grad_memory || !m->momentum_memory) {
            if (m->grad_memory) TSF_FREE(m->grad_memory, m->cfg.alloc_ctx);
            if (m->momentum_memory) TSF_FREE(m->momentum_memory, m->cfg.alloc_ctx);
            m->grad_memory = m->momentum_memory = NULL;
            return TSF_ERR_ALLOC;
        }
        memset(m->grad_memory, 0, gbytes);
        memset(m->momentum_memory, 0, bytes);
        m->sgd_steps = 0;
        m->grad_floats = gbytes / sizeof(float), m->grad_fused = fused;
        tsf__layout((float **)&m->grads, s, TSF_NUM_PARAMS, m->grad_memory);
    }
    return m->B > 0 ? tsf_model_reserve(m, m->B, m->T, m->H, m->W) : TSF_OK;
}

TSFDEF void tsf_model_zero_grad(tsf_model *m) {
    if (m->grad_memory) tsf__zero(m->grad_memory, m->grad_floats);
}

TSFDEF tsf_status tsf_model_loss(tsf_model *m, const float *x, const int *labels, int B, int T,
                                 int H, int W, int train, float *loss) {
    const tsf_config *c = &m->cfg;
    double sum = 0;
    int b;
    tsf_status st;
    if (!labels) return TSF_ERR_ARG;
    for (b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= c->classes) return TSF_ERR_ARG;
    if ((st = tsf__forward(m, x, B, T, H, W, train)) != TSF_OK) return st;
    tsf_crossentropy_forward(m->acts.losses, m->acts.probs, m->acts.logits, labels, B, c->classes,
                             m->label_smoothing);
    for (b = 0; b < B; b++) sum += (double)m->acts.losses[b];
    if (loss) *loss = (float)(sum / B);
    if (m->grad_memory) { /* d mean loss / d logits, where backward starts */
        memset(m->gacts.dlogits, 0, (size_t)B * c->classes * sizeof(float));
        tsf_crossentropy_backward(m->gacts.dlogits, m->acts.probs, labels, B, c->classes,
                                  m->label_smoothing, 1.0f / (float)B);
        m->has_dlogits = 1;
    }
    return sum == sum && sum < (double)INFINITY ? TSF_OK : TSF_ERR_NONFINITE;
}

/* ---- the steps' backward: each scatters back what its forward gathered ---------------------- */
/* A side step's residual backward: the branch's gradient dq // (Rt, D) is dU's patch rows in
   the step's order; the skip path's gradient is dU itself, left where it is. */
static void tsf__side_residual_backward(float *dq, const float *du, const tsf__shape *s, int k,
                                        int D) {
    tsf__side_gather_forward(dq, du, s, k, D); /* the same gather */
}

/* dx patch rows += dseqs, a side step's sequences' gradient. */
static void tsf__side_gather_backward(float *dx, const float *dseqs, const tsf__shape *s, int k,
                                      int D) {
    long q = 0, count, len, r = 0, e;
    for (; tsf__next_run(s, k, 0, &q, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++)
            tsf__seq_scatter(dx, dx, dseqs + (size_t)(r + e * len) * D, s, k, q - count + e, len,
                             D);
    }
}

/* The main residual's backward: dq // (Rs, D) = the gradient of the attention branch (patch
   rows from dv, every cls copy dv_cls / G); the skip path's gradient is dv itself. first:
   dv // (B, D) and dq // (B*G, D) hold the cls rows alone. */
static void tsf__main_residual_backward(float *dq, const float *dv, const tsf__shape *s, int first,
                                        int D) {
    long q = 0, count, len, r = 0, e, G = tsf__seqs(s, s->main) / s->B;
    size_t NT = (size_t)s->N * s->T;
    float inv = 1.0f / (float)G;
    for (; tsf__next_run(s, s->main, 1, &q, &count, &len); r += count * (first ? 1 : len)) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++) {
            long qe = q - count + e;
            float *o = dq + (size_t)(r + e * (first ? 1 : len)) * D;
            const float *cls = dv + (size_t)(qe / G) * (first ? 1 : 1 + NT) * D;
            int i;
            for (i = 0; i < D; i++) o[i] = cls[i] * inv; /* the mean's */
            if (!first) tsf__seq_gather(o + D, dv, s, s->main, qe, len - 1, D);
        }
    }
}

/* du += the main step's sequences' gradient: each member to its token row, and every copy of
   z0 to the cls row (z0 feeds all G sequences, so its gradient is their sum, taken in
   sequence order). */
static void tsf__main_gather_backward(float *du, const float *dseqs, const tsf__shape *s, int D) {
    long q, count, len, r, e, G = tsf__seqs(s, s->main) / s->B;
    for (q = 0, r = 0; tsf__next_run(s, s->main, 1, &q, &count, &len); r += count * len)
        for (e = 0; e < count; e++) {
            float *d = du + tsf__cls_row(s, (q - count + e) / G) * D;
            tsf__add_or_mul_n(d, d, dseqs + (size_t)(r + e * len) * D, (size_t)D, 1);
        }
    for (q = 0, r = 0; tsf__next_run(s, s->main, 1, &q, &count, &len); r += count * len) {
        TSF__OMP_FOR((double)count * len * D > TSF__PAR_WORK)
        for (e = 0; e < count; e++) /* the members, past each sequence's cls row */
            tsf__seq_scatter(du, du, dseqs + (size_t)(r + e * len + 1) * D, s, s->main,
                             q - count + e, len - 1, D);
    }
}

/* The attention backward of a step, run by run as forward ran it (dqkv written: TSF__SET). */
static void tsf__step_attention_backward(float *dqkv, const float *dout, const float *qkv,
                                         const float *out, const float *lse, const tsf__shape *s,
                                         int k, int main_step, int first, int D, int NH) {
    long q = 0, count, len, r = 0, ro = 0;
    for (; tsf__next_run(s, k, main_step, &q, &count, &len);
         r += count * len, ro += count * (first ? 1 : len))
        tsf__attention_fused_backward(dqkv + (size_t)r * 3 * D, dout + (size_t)ro * D,
                                      qkv + (size_t)r * 3 * D, out + (size_t)ro * D,
                                      lse + (size_t)ro * NH, (int)count, (int)len,
                                      first ? 1 : (int)len, D, NH, TSF__SET);
}

/* Tokens' backward: the gradient of x0 flows to the patch embeddings, and is summed into the
   cls token, the (possibly resized) position rows and the time rows it was built from. */
static void tsf__tokens_backward(float *dpatches, tsf_params *g, const float *dx0,
                                 const tsf_config *c, const tsf__shape *s) {
    int D = c->dim, b, t, n, i;
    for (b = 0; b < s->B; b++)
        for (t = 0; t < s->T; t++) {
            int tr = tsf__nearest(t, s->T, c->frames);
            for (n = -1; n < s->N; n++) {
                const float *d;
                float *pos =
                    g->pos_embed
                        ? g->pos_embed + (size_t)(n < 0 ? 0 : tsf__pos_row(c, n, s->Hp, s->Wp)) * D
                        : NULL;
                if (c->attention == TSF_ATTN_SPACE)
                    d = dx0 + (((size_t)b * s->T + t) * (1 + s->N) + 1 + n) * D;
                else if (n < 0 && t > 0)
                    continue;
                else
                    d = dx0 + ((size_t)b * (1 + (size_t)s->N * s->T) +
                               (n < 0 ? 0 : 1 + (size_t)n * s->T + t)) *
                                  D;
                for (i = 0; pos && i < D; i++) pos[i] += d[i];
                if (n < 0) {
                    for (i = 0; i < D; i++) g->cls_token[i] += d[i];
                } else {
                    memcpy(dpatches + (((size_t)b * s->T + t) * s->N + n) * D, d,
                           (size_t)D * sizeof(float));
                    for (i = 0; g->time_embed && i < D; i++)
                        g->time_embed[(size_t)tr * D + i] += d[i];
                }
            }
        }
}

/* ---- backward ---------------------------------------------------------------------------- */
/* The fused SGD step's pieces (tsf_model_backward_sgd), defined with SGD below. */
static void tsf__grads_clear(const tsf_model *m, const tsf_params *g, int block);
static tsf_status tsf__sgd_fused(tsf_model *m, const tsf_sgd *o, float lr, const tsf_params *w,
                                 const tsf_params *g, int block, int l, double *sumsq);
static tsf_status tsf__grad_hook(tsf_model *m, const float *base, const tsf_params *g, int block,
                                 int l);
static tsf_status tsf__grad_finish(tsf_model *m, const tsf_sgd *o, float lr, const tsf_params *w,
                                   const tsf_params *g, int block, int l, double *sumsq,
                                   tsf_status st);
static tsf_params tsf__grad_slot(const tsf_model *m, const tsf_params *g, int slot);

/* What forward keeps for one block only, made again for block l as forward made it: the
   LayerNorm outputs, which the linear layers after them need for their weight gradients (mean
   and rstd are written again with the same values), and fc2's input GELU(fch) with the same
   dropout mask. (With cfg.recompute the whole block forward has just run again instead.) */
static void tsf__block_remake(tsf_model *m, const tsf__shape *sp, const tsf_params *wp,
                              const tsf_acts *tp, const float *attn_in, int l) {
    const tsf_config *c = &m->cfg;
    const tsf_params w = *wp;
    const tsf_acts t = *tp;
    int D = c->dim, j, h = sp->head && l == c->depth - 1;
    size_t RA = (size_t)sp->RA, Rt = (size_t)sp->Rt, RM = h ? (size_t)sp->SM : (size_t)sp->R;
    for (j = 0; j < sp->nside; j++) {
        tsf__step_weights sw = tsf__side_weights(&w, sp->side[j]);
        tsf__side_acts st = tsf__side_view(&t, sp, c, j);
        tsf_layernorm_forward(st.ln, st.mean, st.rstd, st.in, sw.ln_w, sw.ln_b, (int)Rt, D,
                              c->ln_eps);
    }
    tsf_layernorm_forward(t.ln1, t.ln1_mean, t.ln1_rstd, attn_in, w.ln1_w, w.ln1_b, (int)RA, D,
                          c->ln_eps);
    tsf_layernorm_forward(t.ln2, t.ln2_mean, t.ln2_rstd, t.res1, w.ln2_w, w.ln2_b, (int)RM, D,
                          c->ln_eps);
    tsf_gelu_forward(t.fch_gelu, t.fch, RM * (size_t)tsf__hidden(c));
    if (m->dropout_seed) tsf__dropout(t.fch_gelu, RM * (size_t)tsf__hidden(c), m, l);
}

/* Block l's backward pass, its forward (tsf__block_forward) read from the bottom up: from
   d->dres = d(its output) to d->dres = d(its input xin), adding its weights' gradients into
   gw. Every branch's gradient is written (TSF__SET) into a fresh buffer; the residual stream
   d->dres collects (TSF__ADD) what each branch sends back to it. In the last block with
   s.head, d(out) and d(res1) are the SM cls rows alone, as forward computed them; once the
   attention's branch has taken its share, dres is spread out to every row (the others 0). */
static void tsf__block_backward(tsf_model *m, const tsf__shape *sp, const tsf_params *wp,
                                const tsf_params *gwp, const tsf_acts *tp, const float *xin,
                                int l) {
    const tsf_config *c = &m->cfg;
    const tsf_params w = *wp, gw = *gwp;
    const tsf_acts t = *tp;
    const tsf__shape s = *sp;
    tsf_grad_acts *d = &m->gacts;
    int D = c->dim, HM = tsf__hidden(c), NH = c->heads, j;
    size_t R = (size_t)s.R, RA = (size_t)s.RA, Rt = (size_t)s.Rt;
    int h = s.head && l == c->depth - 1; /* the head's rows alone, as forward */
    tsf__work mw = tsf__model_work(m);
    size_t RQ = h ? (size_t)s.SA : RA, RM = h ? (size_t)s.SM : R;
    const float *attn_in = s.nside ? t.s_in : xin;
    float *keep_m = t.keep + s.SK - s.SM, *keep_a = keep_m - s.SA, *keep = keep_a;
    if (!s.recompute && !s.keep) tsf__block_remake(m, &s, &w, &t, attn_in, l);

    /* MLP: out = res1 + fc2(GELU(fc1(LN2(res1)))); dres holds d(out), RM rows */
    tsf__copy(d->dbranch, d->dres, RM * D); /* the residual: d(branch) = d(out) */
    tsf__drop_path_apply(d->dbranch, keep_m, (size_t)s.SM, RM / (size_t)s.SM, D);
    tsf__linear_backward(d->dhidden, gw.fc2_w, gw.fc2_b, d->dbranch, t.fch_gelu, w.fc2_w, (int)RM,
                         HM, D, TSF__SET, mw);
    if (m->dropout_seed) tsf__dropout(d->dhidden, RM * HM, m, l);
    /* dhidden: d(GELU output), then in place d(fc1 output) */
    tsf__linear_gelu_backward(d->dnorm, gw.fc1_w, gw.fc1_b, d->dhidden, d->dhidden, t.fch, t.ln2,
                              w.fc1_w, (int)RM, D, HM, TSF__SET, s.keep, mw);
    tsf__layernorm_backward(d->dres, gw.ln2_w, gw.ln2_b, d->dnorm, t.res1, w.ln2_w, t.ln2_mean,
                            t.ln2_rstd, (int)RM, D, TSF__ADD); /* dres = d(res1) */

    /* the main attention: res1 = x + proj(MHSA(LN1(x))), over the main step's sequences */
    if (s.nside)
        tsf__main_residual_backward(d->dbranch, d->dres, &s, h, D);
    else
        tsf__copy(d->dbranch, d->dres, RQ * D); /* (h: SA = SM rows) */
    tsf__drop_path_seqs(d->dbranch, keep_a, &s, s.main, 1, h, D);
    if (h) /* dres = d(x): the cls rows', the others' 0 */
        tsf__rows_spread(d->dres, (size_t)s.SM, R / (size_t)s.SM, D);
    tsf__linear_backward(d->dattn, gw.proj_w, gw.proj_b, d->dbranch, t.atty, w.proj_w, (int)RQ, D,
                         D, TSF__SET, mw);
    tsf__step_attention_backward(d->dqkv, d->dattn, t.qkv, t.atty, t.lse, &s, s.main, 1, h, D, NH);
    tsf__linear_backward(d->dnorm, gw.qkv_w, gw.qkv_b, d->dqkv, t.ln1, w.qkv_w, (int)RA, D, 3 * D,
                         TSF__SET, mw);
    if (!s.nside) {
        tsf__layernorm_backward(d->dres, gw.ln1_w, gw.ln1_b, d->dnorm, attn_in, w.ln1_w, t.ln1_mean,
                                t.ln1_rstd, (int)RA, D, TSF__ADD); /* dres = d(x) */
        return;
    }
    tsf__layernorm_backward(d->dseq, gw.ln1_w, gw.ln1_b, d->dnorm, attn_in, w.ln1_w, t.ln1_mean,
                            t.ln1_rstd, (int)RA, D, TSF__SET);
    tsf__main_gather_backward(d->dres, d->dseq, &s, D); /* dres = d(the last side step's U) */

    /* side steps, last first: U = x + fc(proj(MHSA(LN(sequences of x's patch tokens)))) */
    for (j = s.nside - 1; j >= 0; j--) {
        int k = s.side[j];
        tsf__step_weights sw = tsf__side_weights(&w, k), sg = tsf__side_weights(&gw, k);
        tsf__side_acts st = tsf__side_view(&t, &s, c, j);
        keep -= tsf__seqs(&s, k);
        tsf__side_residual_backward(d->dbranch, d->dres, &s, k, D);
        tsf__linear_backward(d->dseq, sg.fc_w, sg.fc_b, d->dbranch, st.proj, sw.fc_w, (int)Rt, D, D,
                             TSF__SET, mw);
        tsf__drop_path_seqs(d->dseq, keep, &s, k, 0, 0, D);
        tsf__linear_backward(d->dattn, sg.proj_w, sg.proj_b, d->dseq, st.atty, sw.proj_w, (int)Rt,
                             D, D, TSF__SET, mw);
        tsf__step_attention_backward(d->dqkv, d->dattn, st.qkv, st.atty, st.lse, &s, k, 0, 0, D,
                                     NH);
        tsf__linear_backward(d->dnorm, sg.qkv_w, sg.qkv_b, d->dqkv, st.ln, sw.qkv_w, (int)Rt, D,
                             3 * D, TSF__SET, mw);
        tsf__layernorm_backward(d->dseq, sg.ln_w, sg.ln_b, d->dnorm, st.in, sw.ln_w, st.mean,
                                st.rstd, (int)Rt, D, TSF__SET);
        tsf__side_gather_backward(d->dres, d->dseq, &s, k, D); /* dres = d(this step's x) */
    }
}

/* The backward pass of the last loss, and with o the fused SGD step (tsf_model_backward_sgd):
   each block's update applied as soon as its gradient is complete, the other tensors' at the
   end, *sumsq collecting the squared gradient norm in tsf_sgd_step's order. With overlap
   (m->grad_wait) block l's update waits until block l-1's backward has run (its sum under way
   meanwhile), in the fused layout in the other of two gradient slots (tsf__grad_slot); block
   0's until the embeddings' backward has run. The same updates in the same order. */
static tsf_status tsf__backward(tsf_model *m, float *dinput, const tsf_sgd *o, float lr,
                                double *sumsq) {
    const tsf_config *c = &m->cfg;
    const tsf_params *p = &m->params;
    tsf_params *g = &m->grads;
    tsf_acts *a = &m->acts;
    tsf_grad_acts *d = &m->gacts;
    int B = m->B, D = c->dim, K = c->classes, l;
    tsf_status st = TSF_OK;
    tsf__shape s;
    int overlap = o && m->grad_hook && m->grad_wait; /* (the caller made grad_spare) */
    tsf_params wq = *p, gq = *g;                     /* overlap: block l+1, being summed */
    tsf__work mw = tsf__model_work(m);
    if (!m->grad_memory || !m->has_dlogits || (m->cfg.recompute != 0) != m->act_recompute ||
        (!m->cfg.recompute && m->cfg.keep_acts) != m->act_keep)
        return TSF_ERR_ARG;                       /* tsf_model_loss first, with this layout */
    tsf__model_shape(m, B, m->T, m->H, m->W, &s); /* the training layout */
    s.head = !m->act_all_tokens;                  /* as the forward pass ran */

    /* head, in reverse: classifier, final LayerNorm, cls pooling */
    tsf__linear_backward(d->dlnf, g->head_w, g->head_b, d->dlogits, a->lnf, p->head_w, B, D, K,
                         TSF__SET, mw);
    tsf__layernorm_backward(d->dpooled, g->lnf_w, g->lnf_b, d->dlnf, a->pooled, p->lnf_w,
                            a->lnf_mean, a->lnf_rstd, B, D, TSF__SET);
    /* the pooling reads the cls rows alone: with s.head the last block's SM rows (its
       backward spreads them out and zeroes the rest), else every row */
    tsf__zero(d->dres, (size_t)(s.head ? s.SM : s.R) * D);
    tsf_mean_backward(d->dres, d->dpooled, B, (int)(s.SM / B), D, tsf__head_stride(&s) * D);

    /* the blocks, last first; with one block's gradient buffer (fused) it is cleared first */
    for (l = c->depth - 1; l >= 0; l--) {
        tsf_params w = tsf__layer_params(p, c, l),
                   gw = tsf__layer_params(g, c, m->grad_fused ? 0 : l);
        tsf_acts t = tsf__layer_acts(a, c, &s, l);
        const float *xin = l > 0 ? tsf__layer_acts(a, c, &s, l - 1).out : a->x0;
        int slot = overlap && m->grad_fused ? (c->depth - 1 - l) % 2 : 0;
        if (slot) gw = tsf__grad_slot(m, &gw, 1);
        if (m->grad_fused) tsf__grads_clear(m, &gw, 1);
        /* recompute: the block's activations, from its input, as forward made them (the
           last block's are still there from the forward pass) */
        if (s.recompute && l < c->depth - 1) tsf__block_forward(m, &s, &w, &t, xin, l);
        tsf__block_backward(m, &s, &w, &gw, &t, xin, l);
        if (overlap) { /* block l's sum begins; block l+1's (begun before this backward) ends */
            st = tsf__grad_hook(m, slot ? m->grad_spare : m->grad_memory, &gw, 1, l);
            if (l < c->depth - 1) st = tsf__grad_finish(m, o, lr, &wq, &gq, 1, l + 1, sumsq, st);
            if (st != TSF_OK) return tsf__grad_finish(m, o, lr, &w, &gw, 1, l, sumsq, st);
            wq = w, gq = gw;
        } else if (o && (st = tsf__sgd_fused(m, o, lr, &w, &gw, 1, l, sumsq)) != TSF_OK)
            return st;
    }

    /* embeddings, in reverse: tokens, then the patch embedding (and the input, if asked) */
    tsf__tokens_backward(d->dpatches, g, d->dres, c, &s);
    tsf_patch_embed_backward(dinput, dinput ? d->dcols : NULL, g->patch_w, g->patch_b, d->dpatches,
                             a->cols, p->patch_w, B, c->channels, m->T, m->H, m->W, c->patch_size,
                             D);
    if (overlap) { /* block -1's sum begins, block 0's ends, then block -1's */
        st = tsf__grad_hook(m, m->grad_memory, g, 0, -1);
        st = tsf__grad_finish(m, o, lr, &wq, &gq, 1, 0, sumsq, st);
        return tsf__grad_finish(m, o, lr, p, g, 0, -1, sumsq, st);
    }
    return o ? tsf__sgd_fused(m, o, lr, p, g, 0, -1, sumsq) : TSF_OK;
}

TSFDEF tsf_status tsf_model_backward(tsf_model *m, float *dinput) {
    if (m->grad_fused) return TSF_ERR_ARG; /* no room for every gradient */
    return tsf__backward(m, dinput, NULL, 0.0f, NULL);
}

/* ---- SGD --------------------------------------------------------------------------------- */
TSFDEF tsf_sgd tsf_sgd_default(void) {
    tsf_sgd o;
    memset(&o, 0, sizeof o);
    o.momentum = 0.9f, o.weight_decay = 1e-4f, o.nesterov = 1;
    return o;
}

/* Parameters a weight-decay exemption covers: all but the matrices (embeddings, LayerNorm
   weights and biases, and every bias). */
static int tsf__no_decay(int field) { return tsf__param_table[field].kind != TSF__MATRIX; }

/* The parameters SGD updates, in two groups: one block's tensors (block = 1; the views
   advanced to that block with tsf__layer_params) or the tensors outside the blocks
   (block = 0). Returns the length of tensor f in that group, 0 if it is not in it. */
static size_t tsf__group_len(const tsf_config *c, const double *s, int f, int block) {
    int per_block = tsf__param_table[f].per_block;
    if (per_block != (block != 0)) return 0;
    return (size_t)(per_block ? s[f] / c->depth : s[f]);
}

/* Sum of squares of x // (n) in double, the same for any thread count: 64 chunks fixed by n
   alone, each summed in 8 lanes (which compilers vectorise), then lanes and chunks in order. */
static double tsf__sumsq_chunk(const float *x, size_t n, long c) { /* chunk c of the 64 */
    size_t i = (size_t)((double)n * c / 64), end = (size_t)((double)n * (c + 1) / 64), j;
    double acc[8] = {0};
    for (; i + 8 <= end; i += 8)
        for (j = 0; j < 8; j++) acc[j] += (double)x[i + j] * (double)x[i + j];
    for (j = 0; i < end; i++, j++) acc[j] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
static double tsf__sumsq(const float *x, size_t n) {
    double part[64], total = 0.0;
    long c;
    TSF__PAR_LOOP(n > 65536, c, 64, part[c] = tsf__sumsq_chunk(x, n, c));
    for (c = 0; c < 64; c++) total += part[c];
    return total;
}

/* The squared norm of a group's gradients g, tensor after tensor. */
static double tsf__group_sumsq(const tsf_model *m, const tsf_params *g, int block) {
    float *const *gv = (float *const *)g;
    double s[TSF_NUM_PARAMS], total = 0.0;
    int f;
    tsf__param_sizes(&m->cfg, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        if (gv[f]) total += tsf__sumsq(gv[f], tsf__group_len(&m->cfg, s, f, block));
    return total;
}

static void tsf__grads_clear(const tsf_model *m, const tsf_params *g, int block) {
    float *const *gv = (float *const *)g;
    double s[TSF_NUM_PARAMS];
    int f;
    tsf__param_sizes(&m->cfg, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        if (gv[f]) tsf__zero(gv[f], tsf__group_len(&m->cfg, s, f, block));
}

/* One SGD update of chunk c (TSF__EW_BLOCK elements) of a tensor of n: weights w, gradients g
   (times scale), momentum buf, weight decay wd. torch.optim.SGD: d = g + wd*w; buf = d (first step:
   first) or momentum*buf + d; d = d + momentum*buf (Nesterov) or buf; w -= lr*d. */
static void tsf__sgd_chunk(float *w, const float *g, float *buf, long n, long c, const tsf_sgd *o,
                           float lr, float scale, float wd, int first) {
    long k = c * TSF__EW_BLOCK, end = n - k > TSF__EW_BLOCK ? k + TSF__EW_BLOCK : n;
    for (; k < end; k++) {
        float d = g[k] * scale + wd * w[k];
        if (o->momentum != 0.0f) {
            buf[k] = first ? d : o->momentum * buf[k] + d;
            d = o->nesterov ? d + o->momentum * buf[k] : buf[k];
        }
        w[k] -= lr * d;
    }
}
/* One SGD update of a group: weights w, gradients g, the momentum buffers laid out as the
   weights; each tensor in chunks (tsf__sgd_chunk). */
static void tsf__sgd_apply(tsf_model *m, const tsf_sgd *o, float lr, float scale,
                           const tsf_params *w, const tsf_params *g, int block) {
    float *const *wv = (float *const *)w, *const *gv = (float *const *)g;
    double s[TSF_NUM_PARAMS];
    int f;
    tsf__param_sizes(&m->cfg, s);
    m->packed_stale = 1; /* the packed copy (tsf_model_pack_weights) is packed again */
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        float *wf = wv[f], *gf = gv[f], *buf;
        float wd = o->no_decay_embeddings_norms_biases && tsf__no_decay(f) ? 0.0f : o->weight_decay;
        long n = (long)tsf__group_len(&m->cfg, s, f, block), c;
        if (!wf || !n) continue;
        buf = m->momentum_memory + (wf - m->param_memory);
        TSF__PAR_LOOP(n > 65536, c, (n + TSF__EW_BLOCK - 1) / TSF__EW_BLOCK,
                      tsf__sgd_chunk(wf, gf, buf, n, c, o, lr, scale, wd, m->sgd_steps == 0));
    }
}

/* m->grad_hook on a group whose gradient is complete (block != 0: one block's, number l),
   one call for every run of its tensors that lie back to back in the gradient buffer (with
   cfg.fused_sgd a block's tensors are one run); base: that buffer (m->grad_memory, or
   m->grad_spare for the second slot, tsf__grad_slot). */
static tsf_status tsf__grad_hook(tsf_model *m, const float *base, const tsf_params *g, int block,
                                 int l) {
    float *const *gv = (float *const *)g, *start = NULL, *end = NULL;
    double s[TSF_NUM_PARAMS];
    tsf_status st;
    int f;
    if (!m->grad_hook) return TSF_OK;
    tsf__param_sizes(&m->cfg, s);
    for (f = 0; f <= TSF_NUM_PARAMS; f++) {
        size_t n = f < TSF_NUM_PARAMS ? tsf__group_len(&m->cfg, s, f, block) : 0;
        if (!n && f < TSF_NUM_PARAMS) continue; /* absent, or not in this group */
        /* the next tensor continues the run when it starts where the layout's alignment
           (16 floats, tsf__layout) puts the one after the run's end */
        size_t aligned = end ? ((size_t)(end - base) + 15) / 16 * 16 : 0;
        if (n && start && gv[f] == base + aligned) {
            end = gv[f] + n;
            continue;
        }
        if (start && (st = m->grad_hook(m->grad_hook_ctx, start, (size_t)(end - start),
                                        block ? l : -1)) != TSF_OK)
            return st;
        start = n ? gv[f] : NULL, end = n ? gv[f] + n : NULL;
    }
    return TSF_OK;
}

/* The fused step's update of a group whose gradient is final: its squared norm joins the
   running sum in sumsq (in tsf_sgd_step's order), and it is applied unless the sum is no
   longer finite. */
static tsf_status tsf__sgd_group(tsf_model *m, const tsf_sgd *o, float lr, const tsf_params *w,
                                 const tsf_params *g, int block, double *sumsq) {
    *sumsq += tsf__group_sumsq(m, g, block);
    if (!(*sumsq < 1e300)) return TSF_ERR_NONFINITE;
    tsf__sgd_apply(m, o, lr, 1.0f, w, g, block);
    return TSF_OK;
}

/* The fused step's update of a group whose gradient is complete: m->grad_hook sees it, then
   tsf__sgd_group. */
static tsf_status tsf__sgd_fused(tsf_model *m, const tsf_sgd *o, float lr, const tsf_params *w,
                                 const tsf_params *g, int block, int l, double *sumsq) {
    tsf_status st = tsf__grad_hook(m, m->grad_memory, g, block, l);
    return st != TSF_OK ? st : tsf__sgd_group(m, o, lr, w, g, block, sumsq);
}

/* With overlap: m->grad_wait for a group given to m->grad_hook, then its update, unless the
   pass is stopping already (st, returned: the wait only) or the wait fails. */
static tsf_status tsf__grad_finish(tsf_model *m, const tsf_sgd *o, float lr, const tsf_params *w,
                                   const tsf_params *g, int block, int l, double *sumsq,
                                   tsf_status st) {
    tsf_status sw = m->grad_wait(m->grad_hook_ctx, block ? l : -1);
    if (st != TSF_OK) return st;
    return sw != TSF_OK ? sw : tsf__sgd_group(m, o, lr, w, g, block, sumsq);
}

/* The fused layout's block tensors in m->grad_memory: the first one's offset and the floats
   up to the last one's end (the length of m->grad_spare). */
static size_t tsf__grad_block_span(const tsf_model *m, size_t *first) {
    float *const *gv = (float *const *)&m->grads;
    double s[TSF_NUM_PARAMS];
    size_t lo = m->grad_floats, hi = 0;
    int f;
    tsf__param_sizes(&m->cfg, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        size_t n = tsf__group_len(&m->cfg, s, f, 1), at;
        if (!n || !gv[f]) continue;
        at = (size_t)(gv[f] - m->grad_memory);
        lo = at < lo ? at : lo, hi = at + n > hi ? at + n : hi;
    }
    if (first) *first = lo;
    return hi > lo ? hi - lo : 0;
}

/* A block's gradient views g (in m->grad_memory, fused layout) moved to slot 1, m->grad_spare,
   at the same offsets from the first block tensor (a multiple of 16 floats, so the runs are
   those of slot 0). */
static tsf_params tsf__grad_slot(const tsf_model *m, const tsf_params *g, int slot) {
    tsf_params v = *g;
    float **gv = (float **)&v;
    double s[TSF_NUM_PARAMS];
    size_t first;
    int f;
    if (!slot) return v;
    tsf__grad_block_span(m, &first);
    tsf__param_sizes(&m->cfg, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        if (gv[f] && tsf__group_len(&m->cfg, s, f, 1))
            gv[f] = m->grad_spare + ((size_t)(gv[f] - m->grad_memory) - first);
    return v;
}

TSFDEF tsf_status tsf_sgd_step(tsf_model *m, const tsf_sgd *o, float lr, int accum,
                               float *grad_norm) {
    const tsf_config *c = &m->cfg;
    double sumsq = 0;
    float scale;
    int l;
    if (!m->grad_memory || m->grad_fused || !o || accum < 1) return TSF_ERR_ARG;
    /* the global gradient norm: blocks from the last (the order in which the fused step
       meets them), then the other tensors; each tensor in a fixed order */
    for (l = c->depth - 1; l >= 0; l--) {
        tsf_params gl = tsf__layer_params(&m->grads, c, l);
        sumsq += tsf__group_sumsq(m, &gl, 1);
    }
    sumsq += tsf__group_sumsq(m, &m->grads, 0);
    scale = 1.0f / (float)accum; /* the mean over accumulated micro-batches */
    if (grad_norm) *grad_norm = (float)(sqrt(sumsq) / accum);
    if (!(sumsq < 1e300)) return TSF_ERR_NONFINITE; /* NaN or Inf: leave the weights alone */
    if (o->clip_norm > 0.0f) { /* torch's clip_grad_norm_: scale when max/(norm + 1e-6) < 1 */
        float coef = o->clip_norm / (float)(sqrt(sumsq) / accum + 1e-6);
        if (coef < 1.0f) scale *= coef;
    }
    for (l = c->depth - 1; l >= 0; l--) {
        tsf_params wl = tsf__layer_params(&m->params, c, l),
                   gl = tsf__layer_params(&m->grads, c, l);
        tsf__sgd_apply(m, o, lr, scale, &wl, &gl, 1);
    }
    tsf__sgd_apply(m, o, lr, scale, &m->params, &m->grads, 0);
    m->sgd_steps++;
    return TSF_OK;
}

TSFDEF tsf_status tsf_model_backward_sgd(tsf_model *m, const tsf_sgd *o, float lr,
                                         float *grad_norm) {
    double sumsq = 0;
    tsf_status st;
    if (!m->grad_memory || !m->has_dlogits || !o || o->clip_norm > 0.0f) return TSF_ERR_ARG;
    if (m->grad_wait && m->grad_hook && m->grad_fused && !m->grad_spare) {
        /* overlap: room for a second block's gradient (tsf__grad_slot) */
        size_t n = tsf__grad_block_span(m, NULL);
        m->grad_spare = (float *)TSF_MALLOC(n * sizeof(float), m->cfg.alloc_ctx);
        if (!m->grad_spare) return TSF_ERR_ALLOC;
        memset(m->grad_spare, 0, n * sizeof(float)); /* (the padding stays zero) */
    }
    tsf_model_zero_grad(m); /* (only now: a refused call keeps the gradients it found) */
    st = tsf__backward(m, NULL, o, lr, &sumsq);
    if (grad_norm) *grad_norm = (float)sqrt(sumsq);
    if (st == TSF_OK) m->sgd_steps++;
    m->has_dlogits = 0; /* the weights moved: this loss's activations are stale */
    return st;
}

TSFDEF float *tsf_model_grad_buffer(tsf_model *m, size_t *n) {
    if (n) *n = m->grad_memory ? m->grad_floats : 0;
    return m->grad_memory;
}

TSFDEF void tsf_shard(long long n, int rank, int world, long long *begin, long long *count) {
    long long base, extra;
    TSF_ASSERT(world > 0 && rank >= 0 && rank < world && n >= 0);
    base = n / world, extra = n % world;
    *begin = rank * base + (rank < extra ? rank : extra);
    *count = base + (rank < extra);
}

/* ---- learning-rate schedules ------------------------------------------------------------- */
TSFDEF float tsf_lr_steps(float base, float epoch, const float *steps, const float *factors,
                          int n) {
    float lr = base;
    int i;
    for (i = 0; i < n; i++)
        if (epoch >= steps[i]) lr = base * factors[i];
    return lr;
}

TSFDEF float tsf_lr_cosine(float base, long long step, long long warmup, long long total) {
    if (step < warmup) return base * (float)(step + 1) / (float)warmup;
    if (total <= warmup || step >= total) return step >= total ? 0.0f : base;
    return base * 0.5f *
           (1.0f + cosf(3.14159265358979f * (float)(step - warmup) / (float)(total - warmup)));
}

/* ==========================================================================================
   MODEL MEMORY: how big every buffer is, one layout for each, a model made, grown and freed
   ========================================================================================== */

/* Elements of every tensor of tsf_acts, in struct order (in double, as above), and in nl
   how many blocks' worth each holds (per-block tensors are stacked in that many copies):
     inference             one block's of everything, reused by every block;
     training              every block's of what backward reads (L), one of what it does not
                           (u) or recomputes cheaply: the LayerNorm outputs (from their
                           inputs) and fch_gelu (from fch), unless cfg.keep_acts (L);
     training, recompute   every block's input (out), one block's of the rest: backward runs
                           each block's forward again from its input.
   keep holds every block's drop-path scales, always. What only backward reads (lse, fch) is
   left out of inference. */
static void tsf__act_sizes(const tsf_config *c, const tsf__shape *s, double a[], int nl[]) {
    double D = c->dim, HM = tsf__hidden(c), NH = c->heads, K = c->classes;
    double B = s->B, T = s->T, N = s->N, R = (double)s->R, Rt = (double)s->Rt;
    double Rs = (double)s->Rs, RA = (double)s->RA, NS = s->nside;
    double CPP = (double)c->channels * c->patch_size * c->patch_size;
    double train = s->train, katt = s->keep_att ? c->depth : 0;
    int L = c->depth, LK = s->train && !s->recompute ? L : 1, LO = s->train ? L : 1, k = 0;
    int LN = s->train && s->keep ? L : 1; /* the norms' and GELU's outputs */
#define TSF__ACT(blocks, size) (nl[k] = (blocks), a[k++] = (blocks) * (size))
    TSF__ACT(1, B * c->channels * T * s->H * s->W);           /* input */
    TSF__ACT(1, B * T * N * CPP);                             /* cols */
    TSF__ACT(1, B * T * N * D);                               /* patches */
    TSF__ACT(1, R * D);                                       /* x0 */
    TSF__ACT(LK, NS * Rt * D), TSF__ACT(LN, NS * Rt * D);     /* t_in, t_ln */
    TSF__ACT(LK, NS * Rt), TSF__ACT(LK, NS * Rt);             /* t_mean, t_rstd */
    TSF__ACT(LK, NS * Rt * 3 * D);                            /* t_qkv */
    TSF__ACT(LK, train * NS * Rt * NH);                       /* t_lse */
    TSF__ACT(LK, NS * Rt * D), TSF__ACT(LK, NS * Rt * D);     /* t_atty, t_proj */
    TSF__ACT(1, NS * R * D);                                  /* u */
    TSF__ACT(LK, Rs * D);                                     /* s_in */
    TSF__ACT(LN, RA * D), TSF__ACT(LK, RA), TSF__ACT(LK, RA); /* ln1, ln1_mean, ln1_rstd */
    TSF__ACT(LK, RA * 3 * D);                                 /* qkv */
    TSF__ACT(LK, train * RA * NH);                            /* lse */
    TSF__ACT(LK, RA * D);                                     /* atty */
    TSF__ACT(LK, R * D);                                      /* res1 */
    TSF__ACT(LN, R * D), TSF__ACT(LK, R), TSF__ACT(LK, R);    /* ln2, ln2_mean, ln2_rstd */
    TSF__ACT(LK, train * R * HM), TSF__ACT(LN, R * HM);       /* fch, fch_gelu */
    TSF__ACT(LO, R * D);                                      /* out */
    TSF__ACT(L, (double)s->SK);                               /* keep */
    TSF__ACT(1, katt * NH * tsf__seq_sq(s, s->main, 1));      /* att */
    TSF__ACT(1, NS > 0 ? katt * NH * tsf__seq_sq(s, s->side[0], 0) : 0); /* t_att */
    TSF__ACT(1, B * D);                                                  /* pooled */
    TSF__ACT(1, B * D), TSF__ACT(1, B), TSF__ACT(1, B);     /* lnf, lnf_mean, lnf_rstd */
    TSF__ACT(1, B * K), TSF__ACT(1, B * K), TSF__ACT(1, B); /* logits, probs, losses */
    TSF__ACT(1, ((R > Rs ? R : Rs) + B) * D);               /* scratch */
    TSF__ACT(1, (double)tsf__work_floats(B * T * N > R ? B * T * N : R)); /* mm_work */
#undef TSF__ACT
    TSF_ASSERT(k == TSF__NUM_ACTS);
}

/* Elements of every tensor of tsf_grad_acts, in struct order. */
static void tsf__gact_sizes(const tsf_config *c, const tsf__shape *s, double g[]) {
    double D = c->dim, HM = tsf__hidden(c), K = c->classes;
    double B = s->B, T = s->T, N = s->N, R = (double)s->R, Rt = (double)s->Rt;
    double RM = R > (double)s->Rs ? R : (double)s->Rs, RT = (double)s->RA > Rt ? (double)s->RA : Rt;
    double CPP = (double)c->channels * c->patch_size * c->patch_size;
    int k = 0;
    g[k++] = R * D;                                   /* dres */
    g[k++] = RM * D;                                  /* dbranch */
    g[k++] = RT * D, g[k++] = RT * D;                 /* dnorm, dattn */
    g[k++] = RT * 3 * D;                              /* dqkv */
    g[k++] = RT * D;                                  /* dseq */
    g[k++] = R * HM;                                  /* dhidden */
    g[k++] = B * T * N * D, g[k++] = B * T * N * CPP; /* dpatches, dcols */
    g[k++] = B * K, g[k++] = B * D, g[k++] = B * D;   /* dlogits, dlnf, dpooled */
    TSF_ASSERT(k == TSF__NUM_GACTS);
}

/* Lay tensors of the given sizes out in one buffer, each offset a multiple of 16 floats
   (64 bytes). Returns the floats needed; with base != NULL also sets the views (NULL for
   empty tensors). */
static double tsf__layout(float **views, const double *sizes, int n, float *base) {
    double off = 0;
    int i;
    for (i = 0; i < n; i++) {
        if (base) views[i] = sizes[i] > 0 ? base + (size_t)off : NULL;
        off += floor((sizes[i] + 15) / 16) * 16;
    }
    return off;
}

TSFDEF size_t tsf_config_num_params(const tsf_config *c) {
    double s[TSF_NUM_PARAMS], n = 0;
    int i;
    tsf__param_sizes(c, s);
    for (i = 0; i < TSF_NUM_PARAMS; i++) n += s[i];
    return n > TSF__MAX_FLOATS ? (size_t)-1 : (size_t)n;
}

TSFDEF double tsf_config_flops(const tsf_config *c, int T, int H, int W) {
    tsf__shape s =
        tsf__shape_of(c, 1, T ? T : c->frames, H ? H : c->image_size, W ? W : c->image_size);
    double D = c->dim, HM = tsf__hidden(c), N = s.N, Tn = s.T, f = 0;
    double tokens = c->attention == TSF_ATTN_SPACE ? Tn * (N + 1) : N * Tn + 1;
    int k;
    /* attention step over S sequences of length l: qkv + projection, and q.k^T + att.v */
#define TSF__ATTN_FLOPS(S, l) (4.0 * (S) * (l)*D * D + 2.0 * (S) * (l) * (l)*D)
    if (c->attention == TSF_ATTN_SPACE)
        f = TSF__ATTN_FLOPS(Tn, N + 1);
    else if (c->attention == TSF_ATTN_JOINT)
        f = TSF__ATTN_FLOPS(1, N * Tn + 1);
    else { /* side steps (their dense layer too), then the main step with its cls copies */
        for (k = 0; k < s.nside; k++)
            f += 4.0 * N * Tn * D * D + 2.0 * tsf__seq_sq(&s, s.side[k], 0) * D + N * Tn * D * D;
        f += 4.0 * (double)s.Rs * D * D + 2.0 * tsf__seq_sq(&s, s.main, 1) * D;
    }
#undef TSF__ATTN_FLOPS
    f += 2.0 * tokens * D * HM; /* MLP */
    f *= c->depth;
    f += Tn * N * D * c->channels * c->patch_size * c->patch_size; /* patch embedding */
    return f + D * c->classes;                                     /* classifier */
}

/* Check the shape of a pass; then *s is its shape (the training layout: tsf__shape_of). */
static tsf_status tsf__pass_shape(const tsf_config *c, int B, int T, int H, int W, tsf__shape *s) {
    if (B < 1 || T < 1 || H < c->patch_size || W < c->patch_size || B > TSF__MAX_DIM ||
        T > TSF__MAX_DIM || H > TSF__MAX_DIM || W > TSF__MAX_DIM)
        return TSF_ERR_ARG;
    *s = tsf__shape_of(c, B, T, H, W);
    return TSF_OK;
}

/* Floats of the activations of a pass of shape s. */
static tsf_status tsf__act_floats(const tsf_config *c, const tsf__shape *s, double *n) {
    double a[64];
    int nl[64];
    tsf__act_sizes(c, s, a, nl);
    *n = tsf__layout(NULL, a, TSF__NUM_ACTS, NULL);
    return *n > TSF__MAX_FLOATS ? TSF_ERR_OVERFLOW : TSF_OK;
}

TSFDEF tsf_status tsf_model_bytes(const tsf_config *cfg, int B, int T, int H, int W,
                                  size_t *param_bytes, size_t *act_bytes) {
    tsf_config c = *cfg;
    double s[TSF_NUM_PARAMS], n;
    tsf__shape sh;
    tsf_status st = tsf_config_resolve(&c);
    if (st != TSF_OK) return st;
    tsf__param_sizes(&c, s);
    if (param_bytes)
        *param_bytes = (size_t)tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL) * sizeof(float);
    T = T ? T : c.frames, H = H ? H : c.image_size, W = W ? W : c.image_size;
    if ((st = tsf__pass_shape(&c, B, T, H, W, &sh)) != TSF_OK) return st;
    sh.train = 0; /* inference: one block's activations */
    st = tsf__act_floats(&c, &sh, &n);
    if (st == TSF_OK && act_bytes) *act_bytes = (size_t)n * sizeof(float);
    return st;
}

TSFDEF tsf_status tsf_model_train_bytes(const tsf_config *cfg, int B, int T, int H, int W,
                                        size_t *bytes) {
    tsf_config c = *cfg;
    double s[TSF_NUM_PARAMS], g[32], n, act_train, act_infer;
    tsf__shape sh;
    tsf_status st = tsf_config_resolve(&c);
    if (st != TSF_OK) return st;
    T = T ? T : c.frames, H = H ? H : c.image_size, W = W ? W : c.image_size;
    if ((st = tsf__pass_shape(&c, B, T, H, W, &sh)) != TSF_OK) return st;
    sh.recompute = c.recompute != 0;
    sh.keep = !c.recompute && c.keep_acts;
    if ((st = tsf__act_floats(&c, &sh, &act_train)) != TSF_OK) return st;
    sh.train = 0;
    if ((st = tsf__act_floats(&c, &sh, &act_infer)) != TSF_OK) return st;
    tsf__gact_sizes(&c, &sh, g);
    /* gradients, momentum, activation gradients, and every block's activations instead of
       one block's */
    n = tsf__layout(NULL, g, TSF__NUM_GACTS, NULL);
    tsf__param_sizes(&c, s);
    n += tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL);
    tsf__grad_sizes(&c, c.fused_sgd != 0, s);
    n += tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL);
    n += act_train - act_infer;
    if (n > TSF__MAX_FLOATS) return TSF_ERR_OVERFLOW;
    if (bytes) *bytes = (size_t)n * sizeof(float);
    return TSF_OK;
}

/* Truncated normal, std 0.02, cut at +-2 absolute, as the original's trunc_normal_. */
static float tsf__trunc_normal(tsf_rng *rng, float std) {
    float v = std * tsf_rng_normal(rng);
    return v < -2.0f ? -2.0f : v > 2.0f ? 2.0f : v;
}

TSFDEF void tsf_model_init_params(tsf_model *m, unsigned long long seed) {
    const tsf_config *c = &m->cfg;
    double s[TSF_NUM_PARAMS];
    float **views = (float **)&m->params;
    float bound = 1.0f / sqrtf((float)(c->channels * c->patch_size * c->patch_size));
    size_t i;
    int f, pass;
    tsf_rng rng;
    tsf_rng_seed(&rng, seed);
    tsf__param_sizes(c, s);
    m->packed_stale = 1;                                         /* tsf_model_pack_weights */
    memset(m->param_memory, 0, m->param_floats * sizeof(float)); /* TSF__ZEROS */
    for (pass = 0; pass < 2; pass++) /* the trunc-normal tensors draw first, then fan_in */
        for (f = 0; f < TSF_NUM_PARAMS; f++) {
            int init = tsf__param_table[f].init;
            float *w = views[f];
            if (!w) continue;
            if (pass == 0 && init == TSF__ONES)
                for (i = 0; i < (size_t)s[f]; i++) w[i] = 1.0f;
            if (pass == 0 && init == TSF__TRUNC)
                for (i = 0; i < (size_t)s[f]; i++) w[i] = tsf__trunc_normal(&rng, 0.02f);
            if (pass == 1 && init == TSF__FAN_IN)
                for (i = 0; i < (size_t)s[f]; i++)
                    w[i] = bound * (2.0f * tsf_rng_uniform(&rng) - 1.0f);
        }
}

/* lo + (hi - lo) u, u uniform in [0, 1). */
static float tsf__uniform_in(tsf_rng *r, float lo, float hi) {
    return lo + (hi - lo) * tsf_rng_uniform(r);
}

TSFDEF void tsf_model_init_params_scratch(tsf_model *m, unsigned long long seed) {
    const float pi = 3.14159265f, amp = 0.5f * sqrtf(2.0f); /* a sine of RMS 0.5 */
    const tsf_config *c = &m->cfg;
    tsf_params *p = &m->params;
    float **views = (float **)p, std = 1.0f / sqrtf((float)c->dim);
    int D = c->dim, G = c->image_size / c->patch_size, f, d, q;
    double s[TSF_NUM_PARAMS];
    size_t i;
    tsf_rng r;
    tsf_model_init_params(m, seed);
    tsf_rng_seed(&r, tsf_sample_seed(seed, -1, -1)); /* a stream of its own */
    tsf__param_sizes(c, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++) /* the blocks' matrices, in table order */
        if (views[f] && tsf__param_table[f].per_block && tsf__param_table[f].kind == TSF__MATRIX)
            for (i = 0; i < (size_t)s[f]; i++) views[f][i] = std * tsf_rng_normal(&r);
    for (d = 0; p->pos_embed && d < D; d++) { /* a plane wave over the grid a channel */
        float wx = tsf__uniform_in(&r, -pi, pi) * 2 / (float)G;
        float wy = tsf__uniform_in(&r, -pi, pi) * 2 / (float)G;
        float ph = tsf__uniform_in(&r, 0.0f, 2 * pi);
        for (q = 0; q < G * G; q++)
            p->pos_embed[(size_t)(1 + q) * D + d] =
                amp * sinf(wx * (float)(q % G) + wy * (float)(q / G) + ph);
    }
    for (d = 0; p->time_embed && d < D; d++) { /* a wave over the frames a channel */
        float wt = tsf__uniform_in(&r, 0.0f, pi) * 2 / (float)c->frames;
        float ph = tsf__uniform_in(&r, 0.0f, 2 * pi);
        for (q = 0; q < c->frames; q++)
            p->time_embed[(size_t)q * D + d] = amp * sinf(wt * (float)q + ph);
    }
}

/* Allocate a model's buffers without giving the parameters values. B = 0: no activations
   yet (the first forward pass reserves them). */
static tsf_status tsf__model_create(tsf_model *m, const tsf_config *cfg, int B) {
    double s[TSF_NUM_PARAMS];
    tsf_status st;
    int k;
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m); /* first: after any failure tsf_model_free(m) is safe */
    if (!cfg || B < 0) return TSF_ERR_ARG;
    m->cfg = *cfg;
    st = tsf_config_resolve(&m->cfg);
    if (st != TSF_OK) return st;
    tsf__param_sizes(&m->cfg, s);
    m->param_floats = (size_t)tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL);
    for (k = 0; k < TSF_NUM_PARAMS; k++) m->num_params += (size_t)s[k];
    m->param_memory = (float *)TSF_MALLOC(m->param_floats * sizeof(float), m->cfg.alloc_ctx);
    if (!m->param_memory) return TSF_ERR_ALLOC;
    memset(m->param_memory, 0, m->param_floats * sizeof(float)); /* padding included */
    m->owns_memory = 1;
    tsf_rng_seed(&m->rng, 0);
    tsf__layout((float **)&m->params, s, TSF_NUM_PARAMS, m->param_memory);
    st = B > 0 ? tsf_model_reserve(m, B, m->cfg.frames, m->cfg.image_size, m->cfg.image_size)
               : TSF_OK;
    if (st != TSF_OK) tsf_model_free(m);
    return st;
}

TSFDEF tsf_status tsf_model_init(tsf_model *m, const tsf_config *cfg, int B,
                                 unsigned long long seed) {
    tsf_status st = tsf__model_create(m, cfg, B);
    if (st == TSF_OK) tsf_model_init_params(m, seed);
    if (st == TSF_OK) tsf_rng_seed(&m->rng, seed + 1); /* drop-path draws: the same seed */
    return st;
}

/* Grow *mem to hold n floats (the contents are not kept). */
static tsf_status tsf__grow(float **mem, size_t *cap, double n, void *ctx) {
    float *p;
    if (n <= (double)*cap) return TSF_OK;
    if (!(p = (float *)TSF_MALLOC((size_t)n * sizeof(float), ctx))) return TSF_ERR_ALLOC;
    if (*mem) TSF_FREE(*mem, ctx);
    *mem = p, *cap = (size_t)n;
    return TSF_OK;
}

/* The shape of a pass of model m: once training is set up its activations are kept for
   backward, otherwise one block's are reused. */
static tsf_status tsf__model_shape(const tsf_model *m, int B, int T, int H, int W, tsf__shape *s) {
    tsf_status st = tsf__pass_shape(&m->cfg, B, T, H, W, s);
    s->train = m->grad_memory != NULL;
    s->recompute = s->train && m->cfg.recompute;
    s->keep = s->train && !s->recompute && m->cfg.keep_acts;
    s->keep_att = m->keep_attention != 0;
    s->head = !m->all_tokens;
    return st;
}

TSFDEF tsf_status tsf_model_reserve(tsf_model *m, int B, int T, int H, int W) {
    double a[64], g[32], n;
    int nl[64];
    tsf__shape s;
    tsf_status st = tsf__model_shape(m, B, T, H, W, &s);
    if (st != TSF_OK || (st = tsf__act_floats(&m->cfg, &s, &n)) != TSF_OK) return st;
    /* a new shape or layout ends the last loss's backward now: should growing fail
       half-way, the views below no longer match it */
    if (m->B != B || m->T != T || m->H != H || m->W != W || m->act_recompute != s.recompute ||
        m->act_keep != s.keep)
        m->has_dlogits = 0;
    m->act_recompute = s.recompute, m->act_keep = s.keep;
    if ((st = tsf__grow(&m->act_memory, &m->act_floats, n, m->cfg.alloc_ctx)) != TSF_OK) return st;
    tsf__act_sizes(&m->cfg, &s, a, nl);
    tsf__layout((float **)&m->acts, a, TSF__NUM_ACTS, m->act_memory);
    m->act_work_floats = (size_t)a[TSF__NUM_ACTS - 1]; /* mm_work, the last */
    if (m->grad_memory) { /* training: the activation gradients follow the same shape */
        tsf__gact_sizes(&m->cfg, &s, g);
        n = tsf__layout(NULL, g, TSF__NUM_GACTS, NULL);
        if (n > TSF__MAX_FLOATS) return TSF_ERR_OVERFLOW;
        st = tsf__grow(&m->gact_memory, &m->gact_floats, n, m->cfg.alloc_ctx);
        if (st != TSF_OK) return st;
        tsf__layout((float **)&m->gacts, g, TSF__NUM_GACTS, m->gact_memory);
    }
    m->B = B, m->T = T, m->H = H, m->W = W;
    return TSF_OK;
}

TSFDEF void tsf_model_free(tsf_model *m) {
    if (!m) return;
    if (m->owns_memory) {
        if (m->param_memory) TSF_FREE(m->param_memory, m->cfg.alloc_ctx);
        if (m->act_memory) TSF_FREE(m->act_memory, m->cfg.alloc_ctx);
    }
    if (m->labels) TSF_FREE(m->labels, m->cfg.alloc_ctx);
    if (m->label_at) TSF_FREE(m->label_at, m->cfg.alloc_ctx);
    if (m->grad_memory) TSF_FREE(m->grad_memory, m->cfg.alloc_ctx);
    if (m->grad_spare) TSF_FREE(m->grad_spare, m->cfg.alloc_ctx);
    if (m->momentum_memory) TSF_FREE(m->momentum_memory, m->cfg.alloc_ctx);
    if (m->gact_memory) TSF_FREE(m->gact_memory, m->cfg.alloc_ctx);
    if (m->packed_memory) TSF_FREE(m->packed_memory, m->cfg.alloc_ctx);
    memset(m, 0, sizeof *m);
}

/* Pack every matrix into the views of m->packed, block after block. */
static void tsf__pack_weights(tsf_model *m) {
    const tsf_config *c = &m->cfg;
    float *const *src = (float *const *)&m->params, *const *dst = (float *const *)&m->packed;
    double s[TSF_NUM_PARAMS];
    int f, l;
    tsf__packed_sizes(c, s);
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const struct tsf__param_row *row = &tsf__param_table[f];
        int L = row->per_block ? c->depth : 1;
        tsf_matmul_desc d;
        if (!dst[f]) continue;
        memset(&d, 0, sizeof d);
        d.N = (int)tsf__param_dim(c, row->shape[0]), d.K = (int)tsf__param_dim(c, row->shape[1]);
        d.trans_b = 1; /* W // (N, K), used as W^T */
        for (l = 0; l < L; l++) {
            d.B = src[f] + (size_t)l * d.N * d.K;
            tsf_matmul_pack_b(dst[f] + (size_t)l * (size_t)(s[f] / L), &d);
        }
    }
    m->packed_stale = 0;
}

TSFDEF tsf_status tsf_model_pack_weights(tsf_model *m) {
    double s[TSF_NUM_PARAMS], n;
    tsf_status st;
    if (!m || !m->param_memory) return TSF_ERR_ARG;
    tsf__packed_sizes(&m->cfg, s);
    n = tsf__layout(NULL, s, TSF_NUM_PARAMS, NULL);
    if (n > TSF__MAX_FLOATS) return TSF_ERR_OVERFLOW;
    st = tsf__grow(&m->packed_memory, &m->packed_floats, n, m->cfg.alloc_ctx);
    if (st != TSF_OK) return st;
    tsf__layout((float **)&m->packed, s, TSF_NUM_PARAMS, m->packed_memory);
    tsf__pack_weights(m);
    return TSF_OK;
}

TSFDEF void tsf_model_unpack_weights(tsf_model *m) {
    if (!m) return;
    if (m->packed_memory) TSF_FREE(m->packed_memory, m->cfg.alloc_ctx);
    memset(&m->packed, 0, sizeof m->packed);
    m->packed_memory = NULL, m->packed_floats = 0, m->packed_stale = 0;
}

/* ==========================================================================================
   I/O: a small JSON reader, tensor names, safetensors and PyTorch checkpoints in and out
   ========================================================================================== */

/* err->msg = a b c. When that does not fit, a (usually a path) is shortened in the middle,
   "/first/part...last/part", so the reason in b and c is never lost. */
static void tsf__seterr(tsf_error *err, const char *a, const char *b, const char *c) {
    size_t n = 0, cap, la, lb, lc, keep, i;
    if (!err) return;
    cap = sizeof err->msg - 1, la = strlen(a), lb = strlen(b), lc = strlen(c);
    keep = la + lb + lc <= cap ? la : lb + lc + 40 <= cap ? cap - lb - lc : 40;
    for (i = 0; i < la && n < cap; i++) { /* a, or its head ... tail */
        if (keep < la && i == (keep - 3) / 2) {
            memcpy(err->msg + n, "...", 3), n += 3;
            i = la - (keep - 3 - (keep - 3) / 2);
        }
        err->msg[n++] = a[i];
    }
    for (i = 0; i < lb && n < cap; i++) err->msg[n++] = b[i];
    for (i = 0; i < lc && n < cap; i++) err->msg[n++] = c[i];
    err->msg[n] = 0;
}

/* ---- JSON: a validating tokenizer (after jsmn's idea: a flat array of tokens in document
   order, each knowing where its subtree ends). Strings keep their raw, escaped bytes. ---- */
enum { TSF__J_OBJ = 1, TSF__J_ARR, TSF__J_STR, TSF__J_PRIM };
typedef struct tsf__jtok {
    int type, start, end; /* bytes [start, end) of the text (strings: without the quotes) */
    int size;             /* objects: keys; arrays: elements */
    int next;             /* index of the first token after this one's subtree */
} tsf__jtok;
typedef struct tsf__json {
    const char *s;
    int len, ntok, cap;
    tsf__jtok *tok; /* NULL while counting */
} tsf__json;

#define TSF__JSON_MAX_DEPTH 64

static int tsf__json_ws(const tsf__json *j, int p) {
    while (p < j->len && (j->s[p] == ' ' || j->s[p] == '\t' || j->s[p] == '\n' || j->s[p] == '\r'))
        p++;
    return p;
}

static int tsf__json_new(tsf__json *j, int type, int start) {
    int i = j->ntok++;
    if (j->tok) {
        if (i >= j->cap) return -1;
        j->tok[i].type = type, j->tok[i].start = start, j->tok[i].end = start;
        j->tok[i].size = 0, j->tok[i].next = i + 1;
    }
    return i;
}

static int tsf__is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Parse one value at *p; returns 0 on success. */
static int tsf__json_value(tsf__json *j, int *p, int depth) {
    int i, pos = tsf__json_ws(j, *p), count = 0;
    char c;
    if (pos >= j->len || depth > TSF__JSON_MAX_DEPTH) return -1;
    c = j->s[pos];
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if ((i = tsf__json_new(j, c == '{' ? TSF__J_OBJ : TSF__J_ARR, pos)) < 0) return -1;
        pos = tsf__json_ws(j, pos + 1);
        if (pos < j->len && j->s[pos] == close) {
            pos++;
        } else {
            for (;;) {
                if (c == '{') { /* key, then ':' */
                    pos = tsf__json_ws(j, pos);
                    if (pos >= j->len || j->s[pos] != '"') return -1;
                    if (tsf__json_value(j, &pos, depth + 1)) return -1;
                    pos = tsf__json_ws(j, pos);
                    if (pos >= j->len || j->s[pos] != ':') return -1;
                    pos++;
                }
                if (tsf__json_value(j, &pos, depth + 1)) return -1;
                count++;
                pos = tsf__json_ws(j, pos);
                if (pos < j->len && j->s[pos] == ',') {
                    pos++;
                    continue;
                }
                if (pos < j->len && j->s[pos] == close) {
                    pos++;
                    break;
                }
                return -1;
            }
        }
        if (j->tok) j->tok[i].size = count, j->tok[i].end = pos, j->tok[i].next = j->ntok;
    } else if (c == '"') {
        int start = ++pos;
        while (pos < j->len && j->s[pos] != '"') {
            if ((unsigned char)j->s[pos] < 0x20) return -1;
            if (j->s[pos] == '\\') {
                pos++;
                if (pos >= j->len || !j->s[pos] || !strchr("\"\\/bfnrtu", j->s[pos])) return -1;
                if (j->s[pos] == 'u') {
                    int k;
                    for (k = 1; k <= 4; k++)
                        if (pos + k >= j->len || !tsf__is_hex(j->s[pos + k])) return -1;
                    pos += 4;
                }
            }
            pos++;
        }
        if (pos >= j->len) return -1;
        if ((i = tsf__json_new(j, TSF__J_STR, start)) < 0) return -1;
        if (j->tok) j->tok[i].end = pos;
        pos++;
    } else { /* true, false, null, or a number in JSON's grammar */
        int start = pos, k;
        static const char *const words[3] = {"true", "false", "null"};
        for (k = 0; k < 3; k++) {
            int n = (int)strlen(words[k]);
            if (j->len - pos >= n && memcmp(j->s + pos, words[k], (size_t)n) == 0) {
                pos += n;
                break;
            }
        }
        if (k == 3) { /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
#define TSF__DIGITS(min)                                                                           \
    for (k = 0; pos < j->len && j->s[pos] >= '0' && j->s[pos] <= '9'; k++) pos++;                  \
    if (k < (min)) return -1;
            if (pos < j->len && j->s[pos] == '-') pos++;
            if (pos < j->len && j->s[pos] == '0')
                pos++;
            else {
                TSF__DIGITS(1)
            }
            if (pos < j->len && j->s[pos] == '.') {
                pos++;
                TSF__DIGITS(1)
            }
            if (pos < j->len && (j->s[pos] == 'e' || j->s[pos] == 'E')) {
                pos++;
                if (pos < j->len && (j->s[pos] == '+' || j->s[pos] == '-')) pos++;
                TSF__DIGITS(1)
            }
#undef TSF__DIGITS
        }
        if ((i = tsf__json_new(j, TSF__J_PRIM, start)) < 0) return -1;
        if (j->tok) j->tok[i].end = pos;
    }
    *p = pos;
    return 0;
}

/* Tokenize text; the whole text must be one value. Allocates j->tok. */
static tsf_status tsf__json_parse(tsf__json *j, const char *s, size_t len, void *ctx) {
    int p = 0;
    memset(j, 0, sizeof *j);
    if (len > (size_t)1 << 30) return TSF_ERR_FORMAT;
    j->s = s, j->len = (int)len;
    if (tsf__json_value(j, &p, 0) || tsf__json_ws(j, p) != j->len) return TSF_ERR_FORMAT;
    j->cap = j->ntok;
    j->tok = (tsf__jtok *)TSF_MALLOC((size_t)j->cap * sizeof(tsf__jtok), ctx);
    if (!j->tok) return TSF_ERR_ALLOC;
    j->ntok = 0, p = 0;
    if (tsf__json_value(j, &p, 0)) return TSF_ERR_FORMAT; /* cannot happen: same text */
    return TSF_OK;
}

static int tsf__json_eq(const tsf__json *j, int t, const char *str) {
    size_t n = strlen(str);
    return j->tok[t].type == TSF__J_STR && (size_t)(j->tok[t].end - j->tok[t].start) == n &&
           memcmp(j->s + j->tok[t].start, str, n) == 0;
}

/* The value of key in object obj, or -1. */
static int tsf__json_get(const tsf__json *j, int obj, const char *key) {
    int k, t;
    if (obj < 0 || j->tok[obj].type != TSF__J_OBJ) return -1;
    for (k = 0, t = obj + 1; k < j->tok[obj].size; k++, t = j->tok[t + 1].next)
        if (tsf__json_eq(j, t, key)) return t + 1;
    return -1;
}

/* Element k of array arr, or -1. */
static int tsf__json_at(const tsf__json *j, int arr, int k) {
    int e, t;
    if (arr < 0 || j->tok[arr].type != TSF__J_ARR || k < 0 || k >= j->tok[arr].size) return -1;
    for (e = 0, t = arr + 1; e < k; e++) t = j->tok[t].next;
    return t;
}

/* A number token as a double; 0 if t is not a number. */
static int tsf__json_num(const tsf__json *j, int t, double *out) {
    char buf[64], *end;
    int n;
    if (t < 0 || j->tok[t].type != TSF__J_PRIM) return 0;
    n = j->tok[t].end - j->tok[t].start;
    if (n <= 0 || n >= (int)sizeof buf) return 0;
    memcpy(buf, j->s + j->tok[t].start, (size_t)n);
    buf[n] = 0;
    *out = strtod(buf, &end);
    return *end == 0 && *out == *out;
}

/* An integer in [lo, hi]. */
static int tsf__json_int(const tsf__json *j, int t, long long lo, long long hi, long long *out) {
    double v;
    if (!tsf__json_num(j, t, &v) || v != floor(v) || v < (double)lo || v > (double)hi) return 0;
    *out = (long long)v;
    return 1;
}

/* A JSON true or false; 0 if t is neither. */
static int tsf__json_bool(const tsf__json *j, int t, int *out) {
    int n = t >= 0 ? j->tok[t].end - j->tok[t].start : 0;
    if (t < 0 || j->tok[t].type != TSF__J_PRIM ||
        !((n == 4 && memcmp(j->s + j->tok[t].start, "true", 4) == 0) ||
          (n == 5 && memcmp(j->s + j->tok[t].start, "false", 5) == 0)))
        return 0;
    *out = n == 4;
    return 1;
}

static unsigned long tsf__hex4(const char *h) { /* 4 hex digits, checked by the tokenizer */
    unsigned long c = 0;
    int k;
    for (k = 0; k < 4; k++)
        c = c * 16 + (unsigned long)(h[k] <= '9' ? h[k] - '0' : (h[k] | 32) - 'a' + 10);
    return c;
}

/* Decode string token t into out (NUL-terminated): escapes are resolved, \uXXXX (and
   surrogate pairs) become UTF-8, raw bytes are copied. Returns 0 if t is not a string or
   the text does not fit in cap bytes; a buffer of the raw length + 1 always suffices. */
static int tsf__json_str(const tsf__json *j, int t, char *out, size_t cap) {
    int p;
    size_t n = 0;
    if (t < 0 || j->tok[t].type != TSF__J_STR || cap == 0) return 0;
    for (p = j->tok[t].start; p < j->tok[t].end; p++) {
        unsigned long c = (unsigned char)j->s[p];
        char e;
        if (c != '\\') { /* a raw byte (UTF-8 stays as it is) */
            if (n + 1 >= cap) return 0;
            out[n++] = (char)c;
            continue;
        }
        e = j->s[++p];
        c = e == 'b'   ? 8
            : e == 'f' ? 12
            : e == 'n' ? 10
            : e == 'r' ? 13
            : e == 't' ? 9
                       : (unsigned char)e;
        if (e == 'u') {
            c = tsf__hex4(j->s + p + 1);
            if (c == 0) return 0; /* a NUL would cut the string short: refused */
            p += 4;
            if (c >= 0xD800 && c < 0xDC00 && p + 6 < j->tok[t].end && j->s[p + 1] == '\\' &&
                j->s[p + 2] == 'u') { /* a surrogate pair: one code point */
                unsigned long lo = tsf__hex4(j->s + p + 3);
                if (lo >= 0xDC00 && lo < 0xE000)
                    c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00), p += 6;
            }
        }
        /* the exact size, plus the NUL: a guess of 4 would refuse escapes at the end of a
           buffer of the raw length + 1, which always suffices */
        if (n + (c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4) >= cap) return 0;
        if (c < 0x80) {
            out[n++] = (char)c;
        } else if (c < 0x800) {
            out[n++] = (char)(0xC0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 63));
        } else if (c < 0x10000) {
            out[n++] = (char)(0xE0 | (c >> 12));
            out[n++] = (char)(0x80 | ((c >> 6) & 63));
            out[n++] = (char)(0x80 | (c & 63));
        } else {
            out[n++] = (char)(0xF0 | (c >> 18));
            out[n++] = (char)(0x80 | ((c >> 12) & 63));
            out[n++] = (char)(0x80 | ((c >> 6) & 63));
            out[n++] = (char)(0x80 | (c & 63));
        }
    }
    out[n] = 0;
    return 1;
}

/* ---- tensor names ------------------------------------------------------------------------ */
/* The model's tensors in file order: field f (of tsf_params) and block l. */
typedef struct tsf__tensor {
    int field, layer;
} tsf__tensor;

static int tsf__is_per_layer(int field) { return tsf__param_table[field].per_block; }

TSFDEF int tsf_model_num_tensors(const tsf_model *m) {
    float *const *views = (float *const *)&m->params;
    int f, n = 0;
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        if (views[f]) n += tsf__is_per_layer(f) ? m->cfg.depth : 1;
    return n;
}

/* Copy a name of fewer than 96 bytes. */
static int tsf__copy_name(char out[96], const char *s) {
    size_t n = strlen(s);
    if (n >= 96) return 0;
    memcpy(out, s, n + 1);
    return 1;
}

/* A name from the table with its "%d" (if any) replaced by the block number. */
static void tsf__layer_name(char out[96], const char *fmt, int layer) {
    const char *pct = strstr(fmt, "%d");
    char num[16];
    size_t a, n;
    if (!pct) {
        if (!tsf__copy_name(out, fmt)) out[0] = 0;
        return;
    }
    a = (size_t)(pct - fmt);
    n = (size_t)snprintf(num, sizeof num, "%d", layer);
    if (a + n + strlen(pct + 2) >= 96) {
        out[0] = 0;
        return;
    }
    memcpy(out, fmt, a);
    memcpy(out + a, num, n);
    memcpy(out + a + n, pct + 2, strlen(pct + 2) + 1);
}

static void tsf__tensor_info(const tsf_model *m, tsf__tensor t, char name[96], int *ndim,
                             long long shape[4], float **data) {
    const tsf_config *c = &m->cfg;
    const char *code = tsf__param_table[t.field].shape;
    long long numel = 1;
    int k;
    tsf__layer_name(name, tsf__param_table[t.field].hf, t.layer);
    for (k = 0; code[k]; k++) {
        shape[k] = tsf__param_dim(c, code[k]);
        numel *= shape[k];
    }
    *ndim = k;
    *data = ((float *const *)&m->params)[t.field] + (size_t)t.layer * (size_t)numel;
}

TSFDEF void tsf_model_tensor(const tsf_model *m, int i, char name[96], int *ndim,
                             long long shape[4], float **data) {
    tsf__tensor t = {0, 0};
    int n = 0, f, l;
    float *const *views = (float *const *)&m->params;
    for (f = 0; f < TSF_NUM_PARAMS; f++) /* walk tsf__tensors without an array */
        for (l = 0; views[f] && l < (tsf__is_per_layer(f) ? m->cfg.depth : 1); l++)
            if (n++ == i) t.field = f, t.layer = l;
    TSF_ASSERT(i >= 0 && i < n);
    tsf__tensor_info(m, t, name, ndim, shape, data);
}

/* The Hugging Face name of a parameter given its original or HF name ("model." and
   "module." prefixes are dropped); 0 if it is neither. */
static int tsf__to_hf_name(const char *name, char out[96]) {
    int f, layer;
    char probe[96];
    for (;;) {
        if (strncmp(name, "model.", 6) == 0)
            name += 6;
        else if (strncmp(name, "module.", 7) == 0)
            name += 7;
        else
            break;
    }
    if (strlen(name) >= 96) return 0;
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const char *fmt = tsf__param_table[f].orig, *pct = strstr(fmt, "%d");
        if (!pct) {
            if (strcmp(name, fmt) == 0) return tsf__copy_name(out, tsf__param_table[f].hf);
            if (strcmp(name, tsf__param_table[f].hf) == 0) return tsf__copy_name(out, name);
            continue;
        }
        if (strncmp(name, "blocks.", 7) == 0 && sscanf(name + 7, "%d", &layer) == 1 && layer >= 0) {
            tsf__layer_name(probe, fmt, layer);
            if (strcmp(name, probe) == 0)
                return tsf__layer_name(out, tsf__param_table[f].hf, layer), 1;
        }
        if (strncmp(name, "timesformer.encoder.layer.", 26) == 0 &&
            sscanf(name + 26, "%d", &layer) == 1 && layer >= 0) {
            tsf__layer_name(probe, tsf__param_table[f].hf, layer);
            if (strcmp(name, probe) == 0) return tsf__copy_name(out, name);
        }
    }
    return 0;
}

TSFDEF int tsf_param_hf_name(const char *name, char out[96]) { return tsf__to_hf_name(name, out); }

TSFDEF int tsf_nearest_index(int k, int n_out, int n_in) {
    TSF_ASSERT(n_out > 0 && n_in > 0 && k >= 0 && k < n_out);
    return tsf__nearest(k, n_out, n_in);
}

/* ---- config from JSON -------------------------------------------------------------------- */
/* Read the first of two spellings of an integer key into *dst. */
static int tsf__cfg_int(const tsf__json *j, int obj, const char *k1, const char *k2, int *dst,
                        tsf_error *err) {
    long long v;
    int t = tsf__json_get(j, obj, k1);
    if (t < 0 && k2) t = tsf__json_get(j, obj, k2);
    if (t < 0) return 1;
    if (!tsf__json_int(j, t, 1, 1 << 30, &v)) /* explicit 0 is no default: refused */
        return tsf__seterr(err, "config: bad value for ", tsf__json_get(j, obj, k1) >= 0 ? k1 : k2,
                           " (an integer >= 1)"),
               0;
    *dst = (int)v;
    return 1;
}

/* Class names from an id2label object {"0": "name", ...} or an array; stored in *names as
   K consecutive NUL-terminated strings (TSF_MALLOC). One walk over the entries (K may be
   millions): an object's keys must spell 0 .. K-1, each once. */
static tsf_status tsf__labels_from_json(const tsf__json *j, int t, int K, char **names, void *ctx,
                                        tsf_error *err) {
    size_t total = 0, off = 0;
    int k, e, v, n = t >= 0 ? j->tok[t].size : 0;
    int is_obj = t >= 0 && j->tok[t].type == TSF__J_OBJ;
    int *tok = NULL; /* the token of class k's name */
    char *buf = NULL, msg[160];
    tsf_status st = TSF_OK;
    if (t < 0 || (j->tok[t].type != TSF__J_OBJ && j->tok[t].type != TSF__J_ARR) || n != K) {
        snprintf(msg, sizeof msg, "labels: %d names for %d classes (one name per class)", n, K);
        return tsf__seterr(err, msg, "", ""), TSF_ERR_FORMAT;
    }
    if (!(tok = (int *)TSF_MALLOC((size_t)K * sizeof *tok + 1, ctx))) return TSF_ERR_ALLOC;
    for (k = 0; k < K; k++) tok[k] = -1;
    for (e = 0, v = t + 1; e < n; e++, v = j->tok[v].next) {
        long long key = e;
        if (is_obj) { /* "k": digits only, no leading zero */
            int len = j->tok[v].end - j->tok[v].start, i;
            const char *p = j->s + j->tok[v].start;
            key = len > 0 && len < 10 && (p[0] != '0' || len == 1) ? 0 : -1;
            for (i = 0; i < len && key >= 0; i++)
                key = p[i] >= '0' && p[i] <= '9' ? key * 10 + (p[i] - '0') : -1;
            v++; /* the value */
        }
        if (key < 0 || key >= K || tok[key] >= 0 || j->tok[v].type != TSF__J_STR) {
            snprintf(msg, sizeof msg,
                     "labels: entry %d is not a string naming one of the classes 0 .. %d once", e,
                     K - 1);
            st = TSF_ERR_FORMAT;
            break;
        }
        tok[key] = v;
        total += (size_t)(j->tok[v].end - j->tok[v].start) + 1; /* decoding never lengthens */
    }
    if (st == TSF_OK && !(buf = (char *)TSF_MALLOC(total + 1, ctx))) st = TSF_ERR_ALLOC;
    for (k = 0; k < K && st == TSF_OK; k++) { /* copy in class order */
        if (tsf__json_str(j, tok[k], buf + off, total + 1 - off)) {
            off += strlen(buf + off) + 1;
        } else {
            snprintf(msg, sizeof msg, "labels: the name of class %d does not decode", k);
            st = TSF_ERR_FORMAT;
        }
    }
    TSF_FREE(tok, ctx);
    if (st != TSF_OK) {
        if (buf) TSF_FREE(buf, ctx);
        if (st == TSF_ERR_FORMAT) tsf__seterr(err, msg, "", "");
        return st;
    }
    *names = buf;
    return TSF_OK;
}

/* The ratio that gives the MLP width HM back: (int)(D * ratio) == HM (tsf__hidden). HM / D
   rounded to float can fall an ulp short (D 448, HM 31 gave 30): then the next floats up. */
static float tsf__mlp_ratio(int D, int HM) {
    float r = (float)HM / (float)D;
    int k;
    for (k = 0; k < 4 && (int)((float)D * r) < HM; k++) r = nextafterf(r, 2.0f * r + 1.0f);
    return r;
}

/* Keys of a Hugging Face config.json that would change what the model computes, in ways the
   library does not: refused by name, with the value, rather than silently computed
   otherwise. (Dropout and drop-path rates matter only in training, and the initializer
   range only to a new model: they are not refused. Keys the library reads are checked
   where they are read.) */
static tsf_status tsf__config_refuse(const tsf__json *j, int obj, tsf_error *err) {
    static const struct {
        const char *key, *want, *why;
    } rules[] = {
        {"hidden_act", "gelu", "the library computes the exact (erf) GELU, \"gelu\""},
        {"model_type", "timesformer", "not a TimeSformer"},
    };
    char val[64], msg[200];
    size_t k;
    int t;
    for (k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        if ((t = tsf__json_get(j, obj, rules[k].key)) < 0) continue;
        if (tsf__json_eq(j, t, rules[k].want)) continue;
        if (!tsf__json_str(j, t, val, sizeof val)) snprintf(val, sizeof val, "(not a string)");
        snprintf(msg, sizeof msg, "config: %s \"%s\" is not supported (%s)", rules[k].key, val,
                 rules[k].why);
        return tsf__seterr(err, msg, "", ""), TSF_ERR_CONFIG;
    }
    if ((t = tsf__json_get(j, obj, "pruned_heads")) >= 0 &&
        !(j->tok[t].type == TSF__J_OBJ && j->tok[t].size == 0))
        return tsf__seterr(err, "config: pruned_heads is not supported (every head is computed)",
                           "", ""),
               TSF_ERR_CONFIG;
    return TSF_OK;
}

/* Apply the keys of object obj to *cfg; *labels (may be NULL) receives id2label/labels. */
static tsf_status tsf__config_apply(tsf_config *cfg, const tsf__json *j, int obj, char **labels,
                                    tsf_error *err) {
    int t, hidden = 0, k;
    tsf_status st;
    double v;
    char name[64];
    if (obj < 0 || j->tok[obj].type != TSF__J_OBJ)
        return tsf__seterr(err, "config: not a JSON object", "", ""), TSF_ERR_FORMAT;
    if (!tsf__cfg_int(j, obj, "image_size", "img_size", &cfg->image_size, err) ||
        !tsf__cfg_int(j, obj, "patch_size", NULL, &cfg->patch_size, err) ||
        !tsf__cfg_int(j, obj, "num_channels", "in_chans", &cfg->channels, err) ||
        !tsf__cfg_int(j, obj, "num_frames", NULL, &cfg->frames, err) ||
        !tsf__cfg_int(j, obj, "hidden_size", "embed_dim", &cfg->dim, err) ||
        !tsf__cfg_int(j, obj, "num_hidden_layers", "depth", &cfg->depth, err) ||
        !tsf__cfg_int(j, obj, "num_attention_heads", "num_heads", &cfg->heads, err) ||
        !tsf__cfg_int(j, obj, "num_labels", "num_classes", &cfg->classes, err) ||
        !tsf__cfg_int(j, obj, "intermediate_size", NULL, &hidden, err))
        return TSF_ERR_FORMAT;
    if ((t = tsf__json_get(j, obj, "mlp_ratio")) >= 0) {
        if (!tsf__json_num(j, t, &v) || !(v > 0 && v <= 64))
            return tsf__seterr(err, "config: bad mlp_ratio (a number in (0, 64])", "", ""),
                   TSF_ERR_FORMAT;
        cfg->mlp_ratio = (float)v;
    }
    if (hidden > 0) { /* HF gives the width; keep it exact as a ratio */
        if (cfg->dim <= 0)
            return tsf__seterr(err, "config: intermediate_size without hidden_size", "", ""),
                   TSF_ERR_FORMAT;
        cfg->mlp_ratio = tsf__mlp_ratio(cfg->dim, hidden);
        if ((int)((float)cfg->dim * cfg->mlp_ratio) != hidden)
            return tsf__seterr(err, "config: intermediate_size is not representable", "", ""),
                   TSF_ERR_FORMAT;
    }
    if ((t = tsf__json_get(j, obj, "layer_norm_eps")) >= 0 ||
        (t = tsf__json_get(j, obj, "ln_eps")) >= 0) {
        if (!tsf__json_num(j, t, &v) || !((float)v > 0.0f))
            return tsf__seterr(err, "config: layer_norm_eps must be a positive float", "", ""),
                   TSF_ERR_FORMAT;
        cfg->ln_eps = (float)v;
    }
    if ((t = tsf__json_get(j, obj, "attention_type")) >= 0) {
        if (!tsf__json_str(j, t, name, sizeof name) || tsf_attention_parse(name) < 0)
            return tsf__seterr(err, "config: unknown attention_type", "", ""), TSF_ERR_FORMAT;
        cfg->attention = tsf_attention_parse(name);
    }
    if ((t = tsf__json_get(j, obj, "pos_embed")) >= 0) { /* absent: space_time */
        if (!tsf__json_str(j, t, name, sizeof name) || tsf_pos_embed_parse(name) < 0)
            return tsf__seterr(err, "config: unknown pos_embed (space_time, space or none)", "",
                               ""),
                   TSF_ERR_FORMAT;
        cfg->pos_embed = tsf_pos_embed_parse(name);
    }
    if ((t = tsf__json_get(j, obj, "qkv_bias")) >= 0) {
        int on;
        if (!tsf__json_bool(j, t, &on))
            return tsf__seterr(err, "config: qkv_bias must be true or false", "", ""),
                   TSF_ERR_FORMAT;
        cfg->no_qkv_bias = !on;
    }
    if (!tsf__cfg_int(j, obj, "short_side", NULL, &cfg->short_side, err) ||
        !tsf__cfg_int(j, obj, "crop_size", NULL, &cfg->crop_size, err))
        return TSF_ERR_FORMAT;
    if ((st = tsf__config_refuse(j, obj, err)) != TSF_OK) return st;
    for (k = 0; k < 2; k++) { /* "mean": [r, g, b], "std": [r, g, b] */
        float *dst = k ? cfg->std : cfg->mean;
        int i;
        if ((t = tsf__json_get(j, obj, k ? "std" : "mean")) < 0) continue;
        for (i = 0; i < 3; i++)
            if (!tsf__json_num(j, tsf__json_at(j, t, i), &v) || !(v > -1e30 && v < 1e30) ||
                (k && !(v > 0)) || j->tok[t].size != 3)
                return tsf__seterr(err, "config: bad ", k ? "std" : "mean",
                                   " (3 finite numbers; std > 0)"),
                       TSF_ERR_FORMAT;
            else
                dst[i] = (float)v;
    }
    if ((t = tsf__json_get(j, obj, "channel_order")) >= 0) {
        if (!tsf__json_eq(j, t, "BGR") && !tsf__json_eq(j, t, "RGB"))
            return tsf__seterr(err, "config: channel_order must be \"RGB\" or \"BGR\"", "", ""),
                   TSF_ERR_FORMAT;
        cfg->bgr = tsf__json_eq(j, t, "BGR");
    }
    if ((t = tsf__json_get(j, obj, "id2label")) >= 0) {
        if (tsf__json_get(j, obj, "num_labels") < 0) cfg->classes = j->tok[t].size;
        if (labels) return tsf__labels_from_json(j, t, cfg->classes, labels, cfg->alloc_ctx, err);
    }
    return TSF_OK;
}

TSFDEF tsf_status tsf_config_from_json(tsf_config *cfg, const char *json, size_t len,
                                       tsf_error *err) {
    tsf__json j;
    tsf_status st = tsf__json_parse(&j, json, len, cfg->alloc_ctx);
    if (st == TSF_OK)
        st = tsf__config_apply(cfg, &j, 0, NULL, err);
    else
        tsf__seterr(err, st == TSF_ERR_ALLOC ? "config: out of memory" : "config: not valid JSON",
                    "", "");
    if (j.tok) TSF_FREE(j.tok, cfg->alloc_ctx);
    return st;
}

TSFDEF const char *tsf_model_label(const tsf_model *m, int k) {
    if (!m->labels || !m->label_at || k < 0 || k >= m->cfg.classes) return "";
    return m->label_at[k];
}

/* Give m the K names in buf (TSF_MALLOC'd, NUL-separated; NULL: none), with the index that
   makes tsf_model_label O(1). buf is m's (or freed) even on failure. */
static tsf_status tsf__labels_own(tsf_model *m, char *buf) {
    char *p = buf;
    int k;
    if (m->labels) TSF_FREE(m->labels, m->cfg.alloc_ctx);
    if (m->label_at) TSF_FREE(m->label_at, m->cfg.alloc_ctx);
    m->labels = NULL, m->label_at = NULL;
    if (!buf) return TSF_OK;
    m->label_at = (char **)TSF_MALLOC((size_t)m->cfg.classes * sizeof(char *), m->cfg.alloc_ctx);
    if (!m->label_at) {
        TSF_FREE(buf, m->cfg.alloc_ctx);
        return TSF_ERR_ALLOC;
    }
    for (k = 0; k < m->cfg.classes; k++) m->label_at[k] = p, p += strlen(p) + 1;
    m->labels = buf;
    return TSF_OK;
}

TSFDEF tsf_status tsf_model_set_labels(tsf_model *m, const char *const *names) {
    size_t total = 0, off = 0;
    int k;
    char *buf;
    if (!names) return tsf__labels_own(m, NULL);
    for (k = 0; k < m->cfg.classes; k++) total += strlen(names[k]) + 1;
    if (!(buf = (char *)TSF_MALLOC(total + 1, m->cfg.alloc_ctx))) return TSF_ERR_ALLOC;
    for (k = 0; k < m->cfg.classes; k++) {
        memcpy(buf + off, names[k], strlen(names[k]) + 1);
        off += strlen(names[k]) + 1;
    }
    return tsf__labels_own(m, buf);
}

TSFDEF tsf_status tsf_check_finite(const float *x, size_t n, size_t *where) {
    size_t i;
    if (!x && n) return TSF_ERR_ARG;
    for (i = 0; i < n; i++)
        if (!(x[i] - x[i] == 0.0f)) { /* inf - inf and NaN - NaN are NaN */
            if (where) *where = i;
            return TSF_ERR_NONFINITE;
        }
    return TSF_OK;
}

TSFDEF tsf_status tsf_model_check_finite(const tsf_model *m, tsf_error *err) {
    int nt, i, d, ndim, pass;
    if (err) err->msg[0] = 0;
    if (!m || !m->param_memory) return TSF_ERR_ARG;
    nt = tsf_model_num_tensors(m);
    for (pass = 0; pass < (m->momentum_memory ? 2 : 1); pass++)
        for (i = 0; i < nt; i++) {
            char name[96], what[160];
            long long shape[4];
            size_t n = 1, at = 0;
            float *data;
            tsf_model_tensor(m, i, name, &ndim, shape, &data);
            for (d = 0; d < ndim; d++) n *= (size_t)shape[d];
            if (pass) data = m->momentum_memory + (data - m->param_memory);
            if (tsf_check_finite(data, n, &at) == TSF_OK) continue;
            snprintf(what, sizeof what, "%s[%lu]", name, (unsigned long)at);
            tsf__seterr(err, data[at] != data[at] ? "NaN in " : "infinity in ",
                        pass ? "optimizer.momentum." : "", what);
            return TSF_ERR_NONFINITE;
        }
    return TSF_OK;
}

/* ---- reading weight files --------------------------------------------------------------- */
/* Where tensor bytes come from: a memory buffer, or (with stdio) a file. */
typedef struct tsf__source {
    const unsigned char *mem; /* whole file in memory, or NULL */
    void *file;               /* FILE *, when mem is NULL */
    unsigned long long size;  /* bytes in the file */
} tsf__source;

static int tsf__source_read(const tsf__source *src, unsigned long long off, void *dst, size_t n) {
    if (off > src->size || n > src->size - off) return 0;
    if (src->mem) {
        memcpy(dst, src->mem + off, n);
        return 1;
    }
#ifndef TSF_NO_STDIO
    if (fseek((FILE *)src->file, (long)off, SEEK_SET) != 0) return 0;
    return fread(dst, 1, n, (FILE *)src->file) == n;
#else
    return 0;
#endif
}

static float tsf__f16_to_f32(unsigned int h) {
    unsigned int sign = (h >> 15) & 1, e = (h >> 10) & 31, f = h & 1023;
    float v = e == 0    ? ldexpf((float)f, -24)
              : e == 31 ? (f ? NAN : INFINITY)
                        : ldexpf((float)(f | 1024), (int)e - 25);
    return sign ? -v : v;
}

/* The element types a weight file may hold; the model reads the four float types. */
enum { TSF__DT_NONE = 0, TSF__DT_F32, TSF__DT_F16, TSF__DT_BF16, TSF__DT_F64 };

/* Read n values of a float dtype at offset into dst as floats; the file's bytes are
   little-endian, or big-endian with big = 1. */
static int tsf__read_values(const tsf__source *src, unsigned long long off, float *dst, size_t n,
                            int dtype, int big) {
    unsigned char buf[4096];
    int esize = dtype == TSF__DT_F32 ? 4 : dtype == TSF__DT_F64 ? 8 : 2;
    size_t done = 0, i;
    while (done < n) {
        size_t k = n - done < sizeof buf / 8 ? n - done : sizeof buf / 8;
        if (!tsf__source_read(src, off + done * esize, buf, k * esize)) return 0;
        for (i = 0; i < k; i++) {
            const unsigned char *b = buf + i * esize;
            unsigned long long u = 0;
            int q;
            for (q = 0; q < esize; q++) u = (u << 8) | b[big ? q : esize - 1 - q];
            if (esize == 4) {
                unsigned int w = (unsigned int)u;
                memcpy(dst + done + i, &w, 4);
            } else if (esize == 8) {
                double d;
                memcpy(&d, &u, 8);
                dst[done + i] = (float)d;
            } else if (dtype == TSF__DT_BF16) { /* bfloat16: the top half of a float32 */
                unsigned int w = (unsigned int)u << 16;
                memcpy(dst + done + i, &w, 4);
            } else {
                dst[done + i] = tsf__f16_to_f32((unsigned int)u);
            }
        }
        done += k;
    }
    return 1;
}

/* ---- weight files as lists of tensors -----------------------------------------------------
   Every reader (safetensors; PyTorch's torch.save archives, below) turns a file into a list
   of named tensors: dtype, shape, strides, and where element 0 lies in which file. Filling a
   model from such a list is one function for every format (tsf__wlist_fill): names are mapped
   to Hugging Face names, shapes checked, values converted to float32 and strided tensors
   made contiguous. An entry can also be a name whose value is no tensor, with the reason,
   so that the error names it only if the model needs it. */
#define TSF__WMAX_DIMS 8
#define TSF__WMAX_FILES 256

typedef struct tsf__wtensor {
    size_t name;   /* its NUL-terminated name: offset in the list's text          */
    size_t why;    /* 0: a tensor; else the offset of why this name has none      */
    int dtype;     /* TSF__DT_*; NONE: a type the model cannot use (integers, ...) */
    int file, big; /* the file holding the data; 1: its bytes are big-endian      */
    int ndim;      /* shape and strides in elements, at most TSF__WMAX_DIMS       */
    long long shape[TSF__WMAX_DIMS], stride[TSF__WMAX_DIMS];
    unsigned long long off; /* byte offset of element (0, .., 0) in the file               */
} tsf__wtensor;

typedef struct tsf__wlist {
    tsf__wtensor *t;
    int n, cap;
    char *text; /* names and reasons; text[0] is an empty string */
    size_t len, text_cap;
    tsf__source files[TSF__WMAX_FILES];
    int nfiles;
    void *ctx;
} tsf__wlist;

static void tsf__wlist_free(tsf__wlist *l) {
    if (l->t) TSF_FREE(l->t, l->ctx);
    if (l->text) TSF_FREE(l->text, l->ctx);
    l->t = NULL, l->text = NULL, l->n = l->cap = 0, l->len = l->text_cap = 0;
}

/* Keep n bytes of s (plus a NUL) in the list's text; its offset, or 0 when out of memory. */
static size_t tsf__wlist_text(tsf__wlist *l, const char *s, size_t n) {
    size_t at;
    if (l->len + n + 2 > l->text_cap) {
        size_t cap = (l->len + n + 2) * 2;
        char *p = (char *)TSF_MALLOC(cap, l->ctx);
        if (!p) return 0;
        if (l->text)
            memcpy(p, l->text, l->len), TSF_FREE(l->text, l->ctx);
        else
            p[0] = 0, l->len = 1;
        l->text = p, l->text_cap = cap;
    }
    at = l->len;
    memcpy(l->text + at, s, n);
    l->text[at + n] = 0;
    l->len += n + 1;
    return at;
}

/* A new entry named by n bytes of name, cleared; NULL when out of memory. */
static tsf__wtensor *tsf__wlist_add(tsf__wlist *l, const char *name, size_t n) {
    tsf__wtensor *e;
    size_t at;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        tsf__wtensor *p = (tsf__wtensor *)TSF_MALLOC((size_t)cap * sizeof *p, l->ctx);
        if (!p) return NULL;
        if (l->t) memcpy(p, l->t, (size_t)l->n * sizeof *p), TSF_FREE(l->t, l->ctx);
        l->t = p, l->cap = cap;
    }
    if (!(at = tsf__wlist_text(l, name, n))) return NULL;
    e = &l->t[l->n++];
    memset(e, 0, sizeof *e);
    e->name = at;
    return e;
}

/* Mark entry e as holding no tensor, for the reason given in three parts. */
static int tsf__wlist_why(tsf__wlist *l, tsf__wtensor *e, const char *a, const char *b,
                          const char *c) {
    char buf[512];
    if (strlen(a) + strlen(b) + strlen(c) >= sizeof buf) b = "";
    snprintf(buf, sizeof buf, "%s%s%s", a, b, c);
    return (e->why = tsf__wlist_text(l, buf, strlen(buf))) != 0;
}

/* Read entry e (of numel values, checked by its reader to lie inside its file) into dst
   as a contiguous float32 tensor. */
static int tsf__wlist_read(const tsf__wlist *l, const tsf__wtensor *e, float *dst, size_t numel) {
    const tsf__source *src = &l->files[e->file];
    long long idx[TSF__WMAX_DIMS], expect = 1;
    int d, esize = e->dtype == TSF__DT_F32 ? 4 : e->dtype == TSF__DT_F64 ? 8 : 2, contiguous = 1;
    size_t done = 0, run;
    for (d = e->ndim - 1; d >= 0; d--) { /* row-major strides: one read */
        if (e->shape[d] > 1 && e->stride[d] != expect) contiguous = 0;
        expect *= e->shape[d];
    }
    if (contiguous || numel == 0)
        return tsf__read_values(src, e->off, dst, numel, e->dtype, e->big);
    /* strided: runs along the last dimension when it is contiguous, else value by value */
    run = e->stride[e->ndim - 1] == 1 ? (size_t)e->shape[e->ndim - 1] : 1;
    memset(idx, 0, sizeof idx);
    while (done < numel) {
        unsigned long long at = e->off;
        for (d = 0; d < e->ndim; d++) at += (unsigned long long)(idx[d] * e->stride[d]) * esize;
        if (!tsf__read_values(src, at, dst + done, run, e->dtype, e->big)) return 0;
        done += run;
        for (d = e->ndim - (run > 1 ? 2 : 1); d >= 0; d--) { /* the next index, last fastest */
            if (++idx[d] < e->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 1;
}

/* Fill the model's parameters from the list, checking everything: every tensor of the
   model exactly once, no tensor the model does not have, every shape, every value finite
   (TSF_ERR_NONFINITE names the first NaN or infinity). The model's config
   must be set and its buffers allocated. A checkpoint's SGD momentum
   ("optimizer.momentum." + name) goes to m->momentum_memory when that exists (and must then
   be complete); a plain model load skips it. */
static tsf_status tsf__wlist_fill(tsf_model *m, const tsf__wlist *l, tsf_error *err) {
    int nt = tsf_model_num_tensors(m), k, e, d, ndim;
    int nseen = m->momentum_memory ? 2 * nt : nt; /* parameters, then momentum buffers */
    unsigned char *seen = (unsigned char *)TSF_MALLOC((size_t)nseen + 1, m->cfg.alloc_ctx);
    tsf_status st = TSF_OK;
    char hf[96], tname[96];
    long long shape[4];
    float *data;
    if (!seen) return TSF_ERR_ALLOC;
    memset(seen, 0, (size_t)nseen + 1);
    for (e = 0; e < l->n && st == TSF_OK; e++) {
        const tsf__wtensor *w = &l->t[e];
        const char *name = l->text + w->name;
        size_t numel = 1;
        int mom = strncmp(name, "optimizer.momentum.", 19) == 0;
        if (mom && !m->momentum_memory) continue; /* optimizer state: not part of a model */
        if (!tsf__to_hf_name(name + (mom ? 19 : 0), hf)) {
            tsf__seterr(err, "unexpected tensor ", name,
                        " (not a TimeSformer parameter of this config)");
            st = TSF_ERR_FORMAT;
            break;
        }
        for (k = 0; k < nt; k++) { /* which of the model's tensors */
            tsf_model_tensor(m, k, tname, &ndim, shape, &data);
            if (strcmp(tname, hf) == 0) break;
        }
        if (k == nt) {
            tsf__seterr(err, "unexpected tensor ", name, " (not a parameter of this config)");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (w->why) {
            tsf__seterr(err, name, ": ", l->text + w->why);
            st = TSF_ERR_FORMAT;
            break;
        }
        if (w->dtype == TSF__DT_NONE) {
            tsf__seterr(err, "unsupported dtype (want F32, F16, BF16, F64) for ", name, "");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (mom) data = m->momentum_memory + (data - m->param_memory), k += nt;
        if (seen[k]++) {
            tsf__seterr(err, "duplicate tensor ", name, "");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (w->ndim != ndim) st = TSF_ERR_FORMAT;
        for (d = 0; d < ndim && st == TSF_OK; d++) {
            if (w->shape[d] != shape[d]) st = TSF_ERR_FORMAT;
            numel *= (size_t)shape[d];
        }
        if (st != TSF_OK) {
            tsf__seterr(err, "wrong shape for tensor ", name, "");
            break;
        }
        if (!tsf__wlist_read(l, w, data, numel)) {
            tsf__seterr(err, "cannot read the data of ", name, "");
            st = TSF_ERR_IO;
        }
    }
    for (k = 0; k < nseen && st == TSF_OK; k++)
        if (!seen[k]) {
            tsf_model_tensor(m, k % nt, tname, &ndim, shape, &data);
            tsf__seterr(err, "missing tensor ", k >= nt ? "optimizer.momentum." : "", tname);
            st = TSF_ERR_FORMAT;
        }
    TSF_FREE(seen, m->cfg.alloc_ctx);
    /* NaN or infinity in a weight would make every answer NaN: refused here, by name */
    if (st == TSF_OK) st = tsf_model_check_finite(m, err);
    return st;
}

/* ---- safetensors in ---------------------------------------------------------------------- */
/* The bytes of one element of a safetensors dtype (0: unknown), and its TSF__DT_ type. */
static int tsf__st_dtype(const tsf__json *j, int t, int *dtype) {
    static const struct {
        const char *name;
        int size, dtype;
    } types[] = {{"F32", 4, TSF__DT_F32},
                 {"F16", 2, TSF__DT_F16},
                 {"BF16", 2, TSF__DT_BF16},
                 {"F64", 8, TSF__DT_F64},
                 {"I64", 8, 0},
                 {"U64", 8, 0},
                 {"I32", 4, 0},
                 {"U32", 4, 0},
                 {"I16", 2, 0},
                 {"U16", 2, 0},
                 {"I8", 1, 0},
                 {"U8", 1, 0},
                 {"BOOL", 1, 0},
                 {"F8_E4M3", 1, 0},
                 {"F8_E5M2", 1, 0}};
    size_t k;
    for (k = 0; k < sizeof types / sizeof types[0]; k++)
        if (tsf__json_eq(j, t, types[k].name)) return *dtype = types[k].dtype, types[k].size;
    return 0;
}

typedef struct tsf__st_range {
    unsigned long long begin, end;
    int key; /* token of the name */
} tsf__st_range;

static int tsf__range_cmp(const void *a, const void *b) {
    const tsf__st_range *x = (const tsf__st_range *)a, *y = (const tsf__st_range *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* List the tensors of a parsed safetensors header (file `file` of the list, data from byte
   data0 on). The format's rule is checked: the tensors cover the data exactly, one after
   the other, with no byte left over and none shared. */
static tsf_status tsf__st_list(tsf__wlist *l, const tsf__json *j, int file,
                               unsigned long long data0, tsf_error *err) {
    int t, e, n = j->tok[0].size, ne = 0, d;
    unsigned long long data_size = l->files[file].size - data0, at = 0;
    tsf__st_range *r = (tsf__st_range *)TSF_MALLOC(((size_t)n + 1) * sizeof *r, l->ctx);
    tsf_status st = TSF_OK;
    char name[512];
    if (!r) return TSF_ERR_ALLOC;
    for (e = 0, t = 1; e < n && st == TSF_OK; e++, t = j->tok[t + 1].next) {
        int v = t + 1, dt = tsf__json_get(j, v, "dtype"), sh = tsf__json_get(j, v, "shape");
        int of = tsf__json_get(j, v, "data_offsets"), esize = 0, dtype = 0;
        long long b0, b1, dim = 0;
        double numel = 1;
        tsf__wtensor *w;
        if (tsf__json_eq(j, t, "__metadata__")) continue;
        if (!tsf__json_str(j, t, name, sizeof name)) {
            tsf__seterr(err, "safetensors: tensor name too long", "", "");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (dt < 0 || sh < 0 || of < 0 || j->tok[sh].type != TSF__J_ARR ||
            j->tok[sh].size > TSF__WMAX_DIMS ||
            !tsf__json_int(j, tsf__json_at(j, of, 0), 0, 1LL << 62, &b0) ||
            !tsf__json_int(j, tsf__json_at(j, of, 1), 0, 1LL << 62, &b1) || j->tok[of].size != 2) {
            tsf__seterr(err, "safetensors: malformed entry for ", name, "");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (!(esize = tsf__st_dtype(j, dt, &dtype))) {
            tsf__seterr(err, "safetensors: unknown dtype for ", name, "");
            st = TSF_ERR_FORMAT;
            break;
        }
        if (!(w = tsf__wlist_add(l, name, strlen(name)))) {
            st = TSF_ERR_ALLOC;
            break;
        }
        w->dtype = dtype, w->file = file, w->ndim = j->tok[sh].size;
        for (d = w->ndim - 1; d >= 0 && st == TSF_OK; d--) {
            if (!tsf__json_int(j, tsf__json_at(j, sh, d), 0, 1LL << 40, &dim)) st = TSF_ERR_FORMAT;
            w->shape[d] = dim, w->stride[d] = (long long)numel; /* row-major */
            numel *= (double)dim;
        }
        if (st != TSF_OK || b1 < b0 || (unsigned long long)b1 > data_size ||
            (double)(b1 - b0) != numel * esize) {
            tsf__seterr(err,
                        "safetensors: shape or data offsets outside the file or of the wrong "
                        "size for ",
                        name, "");
            st = TSF_ERR_FORMAT;
            break;
        }
        w->off = data0 + (unsigned long long)b0;
        r[ne].begin = (unsigned long long)b0, r[ne].end = (unsigned long long)b1, r[ne++].key = t;
    }
    if (st == TSF_OK) { /* exactly covered: sorted by offset, each begins where one ends */
        qsort(r, (size_t)ne, sizeof *r, tsf__range_cmp);
        for (e = 0; e <= ne && st == TSF_OK; e++) {
            unsigned long long begin = e < ne ? r[e].begin : data_size;
            if (begin == at) {
                if (e < ne) at = r[e].end;
                continue;
            }
            if (e == ne || !tsf__json_str(j, r[e].key, name, sizeof name)) name[0] = 0;
            tsf__seterr(err, "safetensors: ",
                        begin < at ? "overlapping data offsets at "
                        : e < ne   ? "bytes that no tensor covers before "
                                   : "bytes that no tensor covers at the end of the data",
                        name);
            st = TSF_ERR_FORMAT;
        }
    }
    TSF_FREE(r, l->ctx);
    return st;
}

/* The safetensors header: 8-byte little-endian length, then that much JSON. */
#define TSF__ST_MAX_HEADER (100u << 20)

/* Read the checkpoint's train_state (a JSON string in __metadata__) into m and *ts. */
static tsf_status tsf__train_state_from_json(tsf_model *m, tsf_train_state *ts, const tsf__json *j,
                                             int meta, tsf_error *err) {
    char txt[2048];
    tsf__json js;
    long long v[4], u;
    double x;
    int t = tsf__json_get(j, meta, "train_state"), k, ok;
    if (t < 0 || !tsf__json_str(j, t, txt, sizeof txt))
        return tsf__seterr(err, "checkpoint: no train_state in __metadata__ (a model file?)", "",
                           ""),
               TSF_ERR_FORMAT;
    if ((k = tsf__json_parse(&js, txt, strlen(txt), m->cfg.alloc_ctx)) != TSF_OK) {
        if (js.tok) TSF_FREE(js.tok, m->cfg.alloc_ctx);
        if (k == TSF_ERR_ALLOC) return TSF_ERR_ALLOC; /* out of memory, not a bad file */
        return tsf__seterr(err, "checkpoint: train_state is not JSON", "", ""), TSF_ERR_FORMAT;
    }
    ok = tsf__json_int(&js, tsf__json_get(&js, 0, "sgd_steps"), 0, 1LL << 62, &m->sgd_steps) &&
         tsf__json_int(&js, tsf__json_get(&js, 0, "step"), 0, 1LL << 62, &ts->step) &&
         tsf__json_int(&js, tsf__json_get(&js, 0, "epoch"), 0, 1LL << 62, &ts->epoch) &&
         tsf__json_int(&js, tsf__json_get(&js, 0, "epoch_step"), 0, 1LL << 62, &ts->epoch_step);
    for (k = 0; k < 4 && ok; k++) {
        ok = tsf__json_int(&js, tsf__json_at(&js, tsf__json_get(&js, 0, "model_rng"), k), 0,
                           0xFFFFFFFFLL, &v[k]) &&
             tsf__json_int(&js, tsf__json_at(&js, tsf__json_get(&js, 0, "data_rng"), k), 0,
                           0xFFFFFFFFLL, &u);
        if (ok) m->rng.s[k] = (unsigned int)v[k], ts->data_rng.s[k] = (unsigned int)u;
    }
    if (ok && (ok = tsf__json_num(&js, tsf__json_get(&js, 0, "drop_path"), &x)))
        m->drop_path = (float)x;
    if (ok && (ok = tsf__json_num(&js, tsf__json_get(&js, 0, "label_smoothing"), &x)))
        m->label_smoothing = (float)x;
    if (ok && (ok = tsf__json_num(&js, tsf__json_get(&js, 0, "dropout"), &x)))
        m->dropout = (float)x;
    TSF_FREE(js.tok, m->cfg.alloc_ctx);
    if (!ok) return tsf__seterr(err, "checkpoint: incomplete train_state", "", ""), TSF_ERR_FORMAT;
    if (!(m->drop_path >= 0.0f && m->drop_path < 1.0f) ||
        !(m->dropout >= 0.0f && m->dropout < 1.0f) ||
        !(m->label_smoothing >= 0.0f && m->label_smoothing <= 1.0f))
        return tsf__seterr(err,
                           "checkpoint: train_state's drop_path, dropout or label_smoothing "
                           "outside [0, 1)",
                           "", ""),
               TSF_ERR_FORMAT;
    return TSF_OK;
}

/* Read and parse the safetensors header of src: 8-byte little-endian length n, then n
   bytes of JSON (an object). *hdr (the text) and j->tok are TSF_MALLOC'd, also on failure. */
static tsf_status tsf__st_header(const tsf__source *src, char **hdr, unsigned long long *n,
                                 tsf__json *j, void *ctx, tsf_error *err) {
    unsigned char len8[8];
    tsf_status st;
    int q;
    *n = 0;
    if (!tsf__source_read(src, 0, len8, 8))
        return tsf__seterr(err, "safetensors: file shorter than its 8-byte header length", "", ""),
               TSF_ERR_FORMAT;
    for (q = 7; q >= 0; q--) *n = (*n << 8) | len8[q];
    if (*n < 2 || *n > TSF__ST_MAX_HEADER || *n > src->size - 8)
        return tsf__seterr(err,
                           "not a safetensors file (its first 8 bytes are no sane header "
                           "length) nor a PyTorch checkpoint (a zip archive)",
                           "", ""),
               TSF_ERR_FORMAT;
    if (!(*hdr = (char *)TSF_MALLOC((size_t)*n, ctx))) return TSF_ERR_ALLOC;
    if (!tsf__source_read(src, 8, *hdr, (size_t)*n))
        return tsf__seterr(err, "safetensors: cannot read the header", "", ""), TSF_ERR_IO;
    st = tsf__json_parse(j, *hdr, (size_t)*n, ctx);
    if (st == TSF_OK && j->tok[0].type != TSF__J_OBJ) st = TSF_ERR_FORMAT;
    if (st != TSF_OK)
        tsf__seterr(err,
                    st == TSF_ERR_ALLOC ? "safetensors: out of memory for the header"
                                        : "safetensors: the header is not a JSON object",
                    "", "");
    return st;
}

/* Class names from JSON text: a config.json's id2label, or a bare id2label object or array
   (tsf_model_save's __metadata__.labels). */
static tsf_status tsf__labels_load(tsf_model *m, const char *text, size_t len, tsf_error *err) {
    tsf__json jl;
    char *labels = NULL;
    tsf_status st = tsf__json_parse(&jl, text, len, m->cfg.alloc_ctx);
    if (st != TSF_OK && st != TSF_ERR_ALLOC) tsf__seterr(err, "labels: not valid JSON", "", "");
    if (st == TSF_OK) {
        int lt = jl.tok[0].type == TSF__J_OBJ && tsf__json_get(&jl, 0, "id2label") >= 0
                     ? tsf__json_get(&jl, 0, "id2label")
                     : 0;
        st = tsf__labels_from_json(&jl, lt, m->cfg.classes, &labels, m->cfg.alloc_ctx, err);
    }
    if (jl.tok) TSF_FREE(jl.tok, m->cfg.alloc_ctx);
    if (st == TSF_OK) st = tsf__labels_own(m, labels);
    return st;
}

/* Load safetensors into m (and, with ts, a checkpoint's momentum and training state). */
static tsf_status tsf__st_load(tsf_model *m, const tsf__source *src, const tsf_config *cfg,
                               const char *labels_json, size_t labels_len, int B,
                               tsf_train_state *ts, tsf_error *err) {
    unsigned long long n = 0;
    char *hdr = NULL, *meta_cfg = NULL;
    tsf__json j, jc;
    tsf_config c;
    tsf_status st;
    int meta, t;
    void *ctx = cfg ? cfg->alloc_ctx : NULL;
    tsf__wlist l;
    memset(&j, 0, sizeof j), memset(&jc, 0, sizeof jc), memset(&l, 0, sizeof l);
    l.ctx = ctx;
    if ((st = tsf__st_header(src, &hdr, &n, &j, ctx, err)) != TSF_OK) goto done;
    /* the config: given, or from __metadata__.config (a JSON string) */
    meta = tsf__json_get(&j, 0, "__metadata__");
    if (cfg) {
        c = *cfg;
    } else {
        size_t len;
        memset(&c, 0, sizeof c);
        t = tsf__json_get(&j, meta, "config");
        if (t < 0) {
            tsf__seterr(err,
                        "safetensors: no config in __metadata__ (load the model folder with its "
                        "config.json)",
                        "", "");
            st = TSF_ERR_CONFIG;
            goto done;
        }
        len = (size_t)(j.tok[t].end - j.tok[t].start) + 1;
        if (!(meta_cfg = (char *)TSF_MALLOC(len, ctx))) {
            st = TSF_ERR_ALLOC;
            goto done;
        }
        if (!tsf__json_str(&j, t, meta_cfg, len)) {
            tsf__seterr(err, "safetensors: __metadata__.config must be a string", "", "");
            st = TSF_ERR_FORMAT;
            goto done;
        }
        if ((st = tsf__json_parse(&jc, meta_cfg, strlen(meta_cfg), ctx)) == TSF_OK)
            st = tsf__config_apply(&c, &jc, 0, NULL, err);
        else if (st != TSF_ERR_ALLOC)
            tsf__seterr(err, "safetensors: __metadata__.config is not JSON", "", "");
        if (st != TSF_OK) goto done;
    }
    if ((st = tsf_config_resolve(&c)) != TSF_OK) {
        tsf__seterr(err, "invalid model configuration: ", tsf_status_string(st), "");
        goto done;
    }
    /* a tiny file must not make us allocate a huge model: every parameter takes at least
       2 bytes of data (F16/BF16) */
    if ((double)tsf_config_num_params(&c) * 2 > (double)(src->size - 8 - n)) {
        tsf__seterr(err, "safetensors: the file is too small for the config's parameter shapes", "",
                    "");
        st = TSF_ERR_FORMAT;
        goto done;
    }
    l.files[0] = *src, l.nfiles = 1;
    if ((st = tsf__st_list(&l, &j, 0, 8 + n, err)) != TSF_OK) goto done;
    if ((st = tsf__model_create(m, &c, B)) != TSF_OK) goto done;   /* values come from the file */
    if (ts && (st = tsf_model_train_init(m)) != TSF_OK) goto done; /* momentum buffers */
    if ((st = tsf__wlist_fill(m, &l, err)) != TSF_OK) goto done;
    if (ts && (st = tsf__train_state_from_json(m, ts, &j, meta, err)) != TSF_OK) goto done;
    /* class names: given (config.json's id2label), else __metadata__.labels */
    if (labels_json) {
        st = tsf__labels_load(m, labels_json, labels_len, err);
    } else if ((t = tsf__json_get(&j, meta, "labels")) >= 0) {
        size_t len = (size_t)(j.tok[t].end - j.tok[t].start) + 1;
        char *txt = (char *)TSF_MALLOC(len, ctx);
        if (!txt) {
            st = TSF_ERR_ALLOC;
        } else if (!tsf__json_str(&j, t, txt, len)) {
            tsf__seterr(err, "safetensors: __metadata__.labels must be a string", "", "");
            st = TSF_ERR_FORMAT;
        } else {
            st = tsf__labels_load(m, txt, strlen(txt), err);
        }
        if (txt) TSF_FREE(txt, ctx);
    }
done:
    if (st != TSF_OK && m->param_memory) tsf_model_free(m);
    tsf__wlist_free(&l);
    if (j.tok) TSF_FREE(j.tok, ctx);
    if (jc.tok) TSF_FREE(jc.tok, ctx);
    if (meta_cfg) TSF_FREE(meta_cfg, ctx);
    if (hdr) TSF_FREE(hdr, ctx);
    return st;
}

/* ---- PyTorch checkpoints in ----------------------------------------------------------------
   torch.save (PyTorch >= 1.6) writes a zip archive of stored (uncompressed) entries, all
   under one folder: data.pkl, a pickle of the saved object (a state dict: names to tensors),
   data/<key>, the raw bytes of each storage, and small text entries (version, byteorder).
   Python's pickle is a program for a stack machine that may call any Python function; this
   reader runs that program on a machine that calls none. Dicts, lists, tuples, strings and
   numbers are built; torch._utils._rebuild_tensor_v2 and _rebuild_parameter become tensor
   descriptions (storage, offset, sizes, strides) and collections.OrderedDict an empty dict;
   every other global (os.system, eval, a config class, ...) is an opaque value that is never
   called and can never become a tensor. Hugging Face's pytorch_model.bin is such a file, and
   so are the original TimeSformer's .pyth checkpoints ({"model_state": ..., ...}). */

/* Little-endian integers. */
static unsigned long long tsf__le(const unsigned char *p, int n) {
    unsigned long long v = 0;
    while (n-- > 0) v = (v << 8) | p[n];
    return v;
}

/* The archive's entries, sorted by name. */
typedef struct tsf__zentry {
    const char *name;        /* in the zip's names buffer */
    unsigned long long head; /* offset of its local header */
    unsigned long long size; /* bytes (a stored entry is as long packed as unpacked) */
    int stored;              /* 1: stored: neither compressed nor encrypted */
} tsf__zentry;
typedef struct tsf__zip {
    tsf__zentry *e;
    int n;
    char *names;
    unsigned long long cd; /* the central directory's offset: entries end before it */
    void *ctx;
} tsf__zip;

static int tsf__zentry_cmp(const void *a, const void *b) {
    return strcmp(((const tsf__zentry *)a)->name, ((const tsf__zentry *)b)->name);
}

static void tsf__zip_free(tsf__zip *z) {
    if (z->e) TSF_FREE(z->e, z->ctx);
    if (z->names) TSF_FREE(z->names, z->ctx);
    z->e = NULL, z->names = NULL, z->n = 0;
}

#define TSF__ZIP_MAX_CD (256u << 20) /* a central directory this large is not a checkpoint */

/* Read the central directory of the zip archive in src: the end record (ZIP64 when the
   counts or offsets need it), then every entry's name, size, method and local header. */
static tsf_status tsf__zip_open(tsf__zip *z, const tsf__source *src, tsf_error *err) {
    unsigned char tail[65557], *cd = NULL, rec[56];
    unsigned long long size = src->size, tn = size < sizeof tail ? size : sizeof tail;
    unsigned long long count, cdsize, cdoff, at;
    long long p;
    size_t total = 0, used = 0;
    int pass, k;
    tsf_status st = TSF_OK;
    z->e = NULL, z->names = NULL, z->n = 0;
    if (size < 22 || !tsf__source_read(src, size - tn, tail, (size_t)tn))
        return tsf__seterr(err, "zip: too short for an archive", "", ""), TSF_ERR_FORMAT;
    for (p = (long long)tn - 22; p >= 0; p--) /* the end record, its comment reaching the end */
        if (memcmp(tail + p, "PK\5\6", 4) == 0 &&
            (unsigned long long)p + 22 + tsf__le(tail + p + 20, 2) == tn)
            break;
    if (p < 0) return tsf__seterr(err, "zip: no end of central directory", "", ""), TSF_ERR_FORMAT;
    count = tsf__le(tail + p + 10, 2), cdsize = tsf__le(tail + p + 12, 4);
    cdoff = tsf__le(tail + p + 16, 4);
    if (tsf__le(tail + p + 4, 2) != 0 || tsf__le(tail + p + 6, 2) != 0)
        return tsf__seterr(err, "zip: archives split over several disks are not supported", "", ""),
               TSF_ERR_FORMAT;
    if (count == 0xFFFF || cdsize == 0xFFFFFFFF || cdoff == 0xFFFFFFFF) { /* ZIP64 */
        unsigned long long loc = size - tn + (unsigned long long)p, r64;
        if (loc < 20 || !tsf__source_read(src, loc - 20, rec, 20) || memcmp(rec, "PK\6\7", 4) ||
            (r64 = tsf__le(rec + 8, 8)) > loc - 20 || !tsf__source_read(src, r64, rec, 56) ||
            memcmp(rec, "PK\6\6", 4))
            return tsf__seterr(err, "zip: malformed ZIP64 end of central directory", "", ""),
                   TSF_ERR_FORMAT;
        count = tsf__le(rec + 32, 8), cdsize = tsf__le(rec + 40, 8), cdoff = tsf__le(rec + 48, 8);
    }
    if (cdoff > size || cdsize > size - cdoff || cdsize > TSF__ZIP_MAX_CD || count > cdsize / 46)
        return tsf__seterr(err, "zip: central directory outside the file", "", ""), TSF_ERR_FORMAT;
    z->cd = cdoff;
    if (!(cd = (unsigned char *)TSF_MALLOC((size_t)cdsize + 1, z->ctx))) return TSF_ERR_ALLOC;
    if (!tsf__source_read(src, cdoff, cd, (size_t)cdsize)) {
        TSF_FREE(cd, z->ctx);
        return tsf__seterr(err, "zip: cannot read the central directory", "", ""), TSF_ERR_IO;
    }
    for (pass = 0; pass < 2 && st == TSF_OK; pass++) { /* measure, then copy */
        for (k = 0, at = 0; k < (int)count; k++) {
            const unsigned char *h = cd + at, *x;
            unsigned long long nl, xl, cl, usize, csize, head, end;
            if (cdsize - at < 46 || memcmp(h, "PK\1\2", 4)) break;
            nl = tsf__le(h + 28, 2), xl = tsf__le(h + 30, 2), cl = tsf__le(h + 32, 2);
            if ((end = at + 46 + nl + xl + cl) > cdsize) break;
            csize = tsf__le(h + 20, 4), usize = tsf__le(h + 24, 4), head = tsf__le(h + 42, 4);
            for (x = h + 46 + nl; x + 4 <= h + 46 + nl + xl;) { /* ZIP64 extra: the 8-byte fields */
                unsigned long long id = tsf__le(x, 2), xn = tsf__le(x + 2, 2);
                const unsigned char *v = x + 4, *ve = x + 4 + xn;
                if (ve > h + 46 + nl + xl) break;
                if (id == 1) {
                    if (usize == 0xFFFFFFFF && v + 8 <= ve) usize = tsf__le(v, 8), v += 8;
                    if (csize == 0xFFFFFFFF && v + 8 <= ve) csize = tsf__le(v, 8), v += 8;
                    if (head == 0xFFFFFFFF && v + 8 <= ve) head = tsf__le(v, 8);
                }
                x = ve;
            }
            if (pass == 0) {
                total += (size_t)nl + 1;
            } else {
                tsf__zentry *e = &z->e[k];
                memcpy(z->names + used, h + 46, (size_t)nl);
                z->names[used + nl] = 0;
                e->name = z->names + used, used += (size_t)nl + 1;
                e->head = head, e->size = usize;
                e->stored = tsf__le(h + 10, 2) == 0 && (tsf__le(h + 8, 2) & 1) == 0 &&
                            csize == usize && memchr(h + 46, 0, (size_t)nl) == NULL;
            }
            at = end;
        }
        if (k < (int)count) {
            tsf__seterr(err, "zip: malformed central directory entry", "", "");
            st = TSF_ERR_FORMAT;
        } else if (pass == 0) {
            z->e = (tsf__zentry *)TSF_MALLOC((size_t)count * sizeof *z->e + 1, z->ctx);
            z->names = (char *)TSF_MALLOC(total + 1, z->ctx);
            if (!z->e || !z->names) st = TSF_ERR_ALLOC;
        }
    }
    TSF_FREE(cd, z->ctx);
    if (st != TSF_OK) return tsf__zip_free(z), st;
    z->n = (int)count;
    qsort(z->e, (size_t)z->n, sizeof *z->e, tsf__zentry_cmp);
    return TSF_OK;
}

/* Where the data of the stored entry `name` lies: 1, or 0 when there is none (*why says
   why: missing, compressed, or a local header that does not match). */
static int tsf__zip_find(const tsf__zip *z, const tsf__source *src, const char *name,
                         unsigned long long *off, unsigned long long *size, const char **why) {
    tsf__zentry key, *e;
    unsigned char h[30];
    unsigned long long data;
    key.name = name;
    e = z->n ? (tsf__zentry *)bsearch(&key, z->e, (size_t)z->n, sizeof *z->e, tsf__zentry_cmp)
             : NULL;
    *why = "is not in the archive";
    if (!e) return 0;
    *why = "is compressed or encrypted (torch.save stores its entries as they are)";
    if (!e->stored) return 0;
    *why = "has a damaged local header";
    if (!tsf__source_read(src, e->head, h, 30) || memcmp(h, "PK\3\4", 4) ||
        tsf__le(h + 26, 2) != strlen(name))
        return 0;
    data = e->head + 30 + tsf__le(h + 26, 2) + tsf__le(h + 28, 2);
    *why = "lies outside the archive's data";
    if (data > z->cd || e->size > z->cd - data) return 0;
    *off = data, *size = e->size;
    return 1;
}

/* ---- the pickle machine ---- */
enum {
    TSF__PV_NONE,
    TSF__PV_BOOL,
    TSF__PV_INT,
    TSF__PV_FLOAT,
    TSF__PV_STR,
    TSF__PV_BYTES,
    TSF__PV_TUPLE,
    TSF__PV_LIST,
    TSF__PV_DICT,
    TSF__PV_GLOBAL,
    TSF__PV_STORAGE,
    TSF__PV_TENSOR,
    TSF__PV_OBJECT /* anything else: never called, never looked into */
};
typedef struct tsf__pv { /* a value */
    int kind;
    int a, b;    /* STR, BYTES: bytes [a, a + b) of the pickle; containers: first and last item
                    (-1: none); GLOBAL: the module and name (STR values); STORAGE: its key (a
                    STR) and TSF__DT_ type; TENSOR: the storage and the sizes tuple; OBJECT:
                    the global that would have made it (-1: none) */
    int c;       /* TENSOR: the strides tuple */
    long long i; /* INT, BOOL; STORAGE: elements; TENSOR: storage offset; INT too large: big */
} tsf__pv;
typedef struct tsf__pitem { /* an element of a container: key (dicts) and value */
    int key, val, next;
} tsf__pitem;
typedef struct tsf__pickle {
    const unsigned char *s;
    size_t len;
    tsf__pv *v;
    tsf__pitem *it;
    int *stack, *marks, *memo;
    int nv, nit, sp, nm, cap, nmemo, memo_cap;
    const char *error; /* why the program was refused */
    void *ctx;
} tsf__pickle;

static int tsf__pv_new(tsf__pickle *P, int kind) {
    if (P->nv >= P->cap) return P->error = "too many values", -1;
    memset(&P->v[P->nv], 0, sizeof *P->v);
    P->v[P->nv].kind = kind, P->v[P->nv].a = P->v[P->nv].b = P->v[P->nv].c = -1;
    return P->nv++;
}

/* A string value: bytes [a, a + n) of the pickle. */
static int tsf__pv_str(tsf__pickle *P, int kind, size_t a, size_t n) {
    int v = tsf__pv_new(P, kind);
    if (v >= 0) P->v[v].a = (int)a, P->v[v].b = (int)n;
    return v;
}

static int tsf__pv_is(const tsf__pickle *P, int v, const char *s) {
    size_t n = strlen(s);
    return v >= 0 && P->v[v].kind == TSF__PV_STR && (size_t)P->v[v].b == n &&
           memcmp(P->s + P->v[v].a, s, n) == 0;
}

/* Is v the global module.name? */
static int tsf__pv_global(const tsf__pickle *P, int v, const char *module, const char *name) {
    return v >= 0 && P->v[v].kind == TSF__PV_GLOBAL && tsf__pv_is(P, P->v[v].a, module) &&
           tsf__pv_is(P, P->v[v].b, name);
}

/* Append value val (with key, or -1) to container c. */
static int tsf__pv_append(tsf__pickle *P, int c, int key, int val) {
    tsf__pitem *it;
    if (P->nit >= P->cap) return P->error = "too many items", 0;
    it = &P->it[P->nit];
    it->key = key, it->val = val, it->next = -1;
    if (P->v[c].b >= 0)
        P->it[P->v[c].b].next = P->nit;
    else
        P->v[c].a = P->nit;
    P->v[c].b = P->nit++;
    return 1;
}

/* Element k of a tuple or list, or -1. */
static int tsf__pv_at(const tsf__pickle *P, int c, int k) {
    int i;
    if (c < 0 || (P->v[c].kind != TSF__PV_TUPLE && P->v[c].kind != TSF__PV_LIST)) return -1;
    for (i = P->v[c].a; i >= 0 && k > 0; k--) i = P->it[i].next;
    return i >= 0 ? P->it[i].val : -1;
}

/* The number of elements of a tuple or list, counted up to max + 1 (a hostile pickle may
   refer to one huge tuple from every call); 0 for any other value. */
static int tsf__pv_count(const tsf__pickle *P, int c, int max) {
    int i, n = 0;
    if (c < 0 || (P->v[c].kind != TSF__PV_TUPLE && P->v[c].kind != TSF__PV_LIST)) return 0;
    for (i = P->v[c].a; i >= 0 && n <= max; i = P->it[i].next) n++;
    return n;
}

/* The value of key (a string) in dict d, or -1. The last one set wins, as in Python. */
static int tsf__pv_get(const tsf__pickle *P, int d, const char *key) {
    int i, found = -1;
    if (d < 0 || P->v[d].kind != TSF__PV_DICT) return -1;
    for (i = P->v[d].a; i >= 0; i = P->it[i].next)
        if (tsf__pv_is(P, P->it[i].key, key)) found = P->it[i].val;
    return found;
}

static int tsf__pv_push(tsf__pickle *P, int v) {
    if (v < 0) return 0;
    if (P->sp >= P->cap) return P->error = "stack overflow", 0;
    P->stack[P->sp++] = v;
    return 1;
}

static int tsf__pv_pop(tsf__pickle *P) {
    int floor = P->nm ? P->marks[P->nm - 1] : 0;
    if (P->sp <= floor) return P->error = "stack underflow", -1;
    return P->stack[--P->sp];
}

/* Pop back to the last MARK; the values above it are stack[*from .. sp). */
static int tsf__pv_pop_mark(tsf__pickle *P, int *from) {
    if (P->nm == 0) return P->error = "no MARK", 0;
    *from = P->marks[--P->nm];
    return 1;
}

/* Make a container of kind from stack[from .. sp) (pairs for a dict), leaving the stack
   at from. */
static int tsf__pv_collect(tsf__pickle *P, int c, int from) {
    int i, step = P->v[c].kind == TSF__PV_DICT ? 2 : 1;
    if ((P->sp - from) % step) return P->error = "a dict of an odd number of values", 0;
    for (i = from; i < P->sp; i += step)
        if (!tsf__pv_append(P, c, step == 2 ? P->stack[i] : -1, P->stack[i + step - 1])) return 0;
    P->sp = from;
    return 1;
}

static int tsf__pv_memo_put(tsf__pickle *P, unsigned long long id) {
    if (P->sp == 0) return P->error = "memo of an empty stack", 0;
    if (id > P->len) return P->error = "memo index out of range", 0;
    if ((int)id >= P->memo_cap) {
        int cap = (int)id + 1 > 2 * P->memo_cap ? (int)id + 1 : 2 * P->memo_cap, k;
        int *p = (int *)TSF_MALLOC((size_t)cap * sizeof *p, P->ctx);
        if (!p) return P->error = "", 0; /* out of memory: "" */
        for (k = 0; k < cap; k++) p[k] = k < P->memo_cap ? P->memo[k] : -1;
        if (P->memo) TSF_FREE(P->memo, P->ctx);
        P->memo = p, P->memo_cap = cap;
    }
    P->memo[id] = P->stack[P->sp - 1];
    return 1;
}

static int tsf__pv_memo_get(tsf__pickle *P, unsigned long long id) {
    if (id >= (unsigned long long)P->memo_cap || P->memo[id] < 0)
        return P->error = "memo index never set", 0;
    return tsf__pv_push(P, P->memo[id]);
}

/* What a call of f(args) gives: tensors for torch's rebuild functions, a dict for
   OrderedDict(), an opaque object for anything else (never called). */
static int tsf__pv_call(tsf__pickle *P, int f, int args) {
    int v;
    if (tsf__pv_global(P, f, "torch._utils", "_rebuild_tensor_v2") ||
        tsf__pv_global(P, f, "torch._utils", "_rebuild_tensor")) {
        v = tsf__pv_new(P, TSF__PV_TENSOR); /* (storage, offset, sizes, strides, ...) */
        if (v >= 0 && tsf__pv_count(P, args, 4) >= 4) {
            int off = tsf__pv_at(P, args, 1);
            P->v[v].a = tsf__pv_at(P, args, 0), P->v[v].b = tsf__pv_at(P, args, 2);
            P->v[v].c = tsf__pv_at(P, args, 3);
            P->v[v].i = P->v[off].kind == TSF__PV_INT ? P->v[off].i : -1;
        }
        return v;
    }
    if ((tsf__pv_global(P, f, "torch._utils", "_rebuild_parameter") ||
         tsf__pv_global(P, f, "torch._utils", "_rebuild_parameter_with_state")) &&
        tsf__pv_count(P, args, 1) >= 1 && P->v[tsf__pv_at(P, args, 0)].kind == TSF__PV_TENSOR)
        return tsf__pv_at(P, args, 0); /* a Parameter is its tensor */
    if (tsf__pv_global(P, f, "collections", "OrderedDict") && tsf__pv_count(P, args, 0) == 0)
        return tsf__pv_new(P, TSF__PV_DICT);
    if ((v = tsf__pv_new(P, TSF__PV_OBJECT)) >= 0)
        P->v[v].a = f >= 0 && P->v[f].kind == TSF__PV_GLOBAL ? f : -1;
    return v;
}

/* A persistent id: ('storage', torch.<Type>Storage, key, location, elements) is a storage
   whose bytes are the archive's data/<key>; anything else is opaque. */
static int tsf__pv_persistent(tsf__pickle *P, int pid) {
    static const struct {
        const char *name;
        int dtype;
    } types[] = {{"FloatStorage", TSF__DT_F32},
                 {"HalfStorage", TSF__DT_F16},
                 {"BFloat16Storage", TSF__DT_BF16},
                 {"DoubleStorage", TSF__DT_F64}};
    int t = tsf__pv_at(P, pid, 1), key = tsf__pv_at(P, pid, 2), n = tsf__pv_at(P, pid, 4), v, k;
    if (!tsf__pv_is(P, tsf__pv_at(P, pid, 0), "storage") || t < 0 ||
        P->v[t].kind != TSF__PV_GLOBAL || !tsf__pv_is(P, P->v[t].a, "torch") || key < 0 ||
        P->v[key].kind != TSF__PV_STR || n < 0 || P->v[n].kind != TSF__PV_INT || P->v[n].i < 0)
        return tsf__pv_new(P, TSF__PV_OBJECT);
    if ((v = tsf__pv_new(P, TSF__PV_STORAGE)) < 0) return -1;
    P->v[v].a = key, P->v[v].b = TSF__DT_NONE, P->v[v].i = P->v[n].i;
    for (k = 0; k < 4; k++)
        if (tsf__pv_is(P, P->v[t].b, types[k].name)) P->v[v].b = types[k].dtype;
    return v;
}

/* A text line of the pickle at *p (protocol 0 arguments): its bytes [*a, *a + *n). */
static int tsf__pickle_line(tsf__pickle *P, size_t *p, size_t *a, size_t *n) {
    const unsigned char *nl = (const unsigned char *)memchr(P->s + *p, '\n', P->len - *p);
    if (!nl) return P->error = "unterminated text argument", 0;
    *a = *p, *n = (size_t)(nl - (P->s + *p)), *p += *n + 1;
    return 1;
}

/* Run the pickle program in P->s; the result is the value left on the stack at STOP. */
static int tsf__pickle_run(tsf__pickle *P) {
    size_t p = 0, a, n;
    int v, x, y, from;
    while (p < P->len) {
        unsigned char op = P->s[p++];
        size_t left = P->len - p;
        unsigned long long u = 0;
        int size = 0;
        switch (op) { /* operand sizes of the fixed-width opcodes */
        case 'K':
        case 'q':
        case 'h':
        case 0x80:
        case 0x82:
        case 'U':
        case 'C':
        case 0x8c:
            size = 1;
            break;
        case 'M':
        case 0x83:
            size = 2;
            break;
        case 'J':
        case 'r':
        case 'j':
        case 'X':
        case 'T':
        case 'B':
        case 0x8b:
        case 0x84:
            size = 4;
            break;
        case 'G':
        case 0x95:
        case 0x8d:
        case 0x8e:
        case 0x96:
            size = 8;
            break;
        default:
            break;
        }
        if ((size_t)size > left) return P->error = "truncated", 0;
        u = tsf__le(P->s + p, size), p += (size_t)size;
        switch (op) {
        case 0x80: /* PROTO */
            if (u > 5) return P->error = "pickle protocol above 5", 0;
            break;
        case 0x95:
            break; /* FRAME: a length hint */
        case '.':  /* STOP */
            return P->sp >= 1 ? 1 : (P->error = "nothing to return", 0);
        case '(': /* MARK */
            if (P->nm >= P->cap) return P->error = "too many marks", 0;
            P->marks[P->nm++] = P->sp;
            break;
        case '0': /* POP */
            if (P->nm && P->marks[P->nm - 1] == P->sp)
                P->nm--; /* pops a mark */
            else if (tsf__pv_pop(P) < 0)
                return 0;
            break;
        case '1': /* POP_MARK */
            if (!tsf__pv_pop_mark(P, &from)) return 0;
            P->sp = from;
            break;
        case '2': /* DUP */
            if (P->sp == 0 || !tsf__pv_push(P, P->stack[P->sp - 1])) return P->error = "DUP", 0;
            break;
        case 'N':
            if (!tsf__pv_push(P, tsf__pv_new(P, TSF__PV_NONE))) return 0;
            break;
        case 0x88:
        case 0x89: /* NEWTRUE, NEWFALSE */
            if ((v = tsf__pv_new(P, TSF__PV_BOOL)) < 0) return 0;
            P->v[v].i = op == 0x88;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        case 'J':
        case 'K':
        case 'M': /* BININT (signed 32), BININT1, BININT2 */
            if ((v = tsf__pv_new(P, TSF__PV_INT)) < 0) return 0;
            P->v[v].i = op == 'J' ? (long long)(int)(unsigned int)u : (long long)u;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        case 0x8a:
        case 0x8b: /* LONG1, LONG4: little-endian two's complement of u bytes */
            if (op == 0x8a) {
                if (left < 1) return P->error = "truncated", 0;
                u = P->s[p++];
            }
            if (u > P->len - p) return P->error = "truncated", 0;
            if ((v = tsf__pv_new(P, TSF__PV_INT)) < 0) return 0;
            if (u <= 8) {
                unsigned long long w = tsf__le(P->s + p, (int)u);
                if (u > 0 && u < 8 && (P->s[p + u - 1] & 0x80)) w |= ~0ULL << (8 * u);
                P->v[v].i = (long long)w;
            } else {
                P->v[v].kind = TSF__PV_OBJECT; /* too large to be a size */
            }
            p += (size_t)u;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        case 'G': /* BINFLOAT: big-endian double; its value is never needed */
        case 'F': /* FLOAT: text */
            if (op == 'F' && !tsf__pickle_line(P, &p, &a, &n)) return 0;
            if (!tsf__pv_push(P, tsf__pv_new(P, TSF__PV_FLOAT))) return 0;
            break;
        case 'I':
        case 'L': { /* INT, LONG: text; "I01" and "I00" are True and False */
            char buf[32], *end;
            if (!tsf__pickle_line(P, &p, &a, &n)) return 0;
            if (n && P->s[a + n - 1] == 'L') n--;
            if (n == 0 || n >= sizeof buf) return P->error = "bad integer", 0;
            memcpy(buf, P->s + a, n), buf[n] = 0;
            if ((v = tsf__pv_new(P, TSF__PV_INT)) < 0) return 0;
            P->v[v].i = strtoll(buf, &end, 10);
            if (*end) return P->error = "bad integer", 0;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        }
        case 'X':
        case 0x8c:
        case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'T':
        case 'U': /* BINSTRING, SHORT_BINSTRING (Python 2 str) */
        case 'B':
        case 'C':
        case 0x8e:
        case 0x96: /* BINBYTES, SHORT_BINBYTES, 8, BYTEARRAY8 */
            if (u > P->len - p) return P->error = "truncated", 0;
            if (!tsf__pv_push(P, tsf__pv_str(P,
                                             op == 'B' || op == 'C' || op == 0x8e || op == 0x96
                                                 ? TSF__PV_BYTES
                                                 : TSF__PV_STR,
                                             p, (size_t)u)))
                return 0;
            p += (size_t)u;
            break;
        case 'V':
        case 'S': /* UNICODE, STRING: text (escapes left as they are) */
            if (!tsf__pickle_line(P, &p, &a, &n)) return 0;
            if (op == 'S' && n >= 2 && (P->s[a] == '\'' || P->s[a] == '"')) a++, n -= 2;
            if (!tsf__pv_push(P, tsf__pv_str(P, TSF__PV_STR, a, n))) return 0;
            break;
        case ')':
        case ']':
        case '}':
        case 0x8f: /* EMPTY_TUPLE, _LIST, _DICT, _SET */
            v = tsf__pv_new(P, op == ')' ? TSF__PV_TUPLE : op == '}' ? TSF__PV_DICT : TSF__PV_LIST);
            if (!tsf__pv_push(P, v)) return 0;
            break;
        case 0x85:
        case 0x86:
        case 0x87: /* TUPLE1, TUPLE2, TUPLE3 */
            from = P->sp - (op - 0x84);
            if (from < (P->nm ? P->marks[P->nm - 1] : 0)) return P->error = "stack underflow", 0;
            if ((v = tsf__pv_new(P, TSF__PV_TUPLE)) < 0 || !tsf__pv_collect(P, v, from) ||
                !tsf__pv_push(P, v))
                return 0;
            break;
        case 't':
        case 'l':
        case 'd':
        case 0x91: /* TUPLE, LIST, DICT, FROZENSET from a mark */
            v = tsf__pv_new(P, op == 't' ? TSF__PV_TUPLE : op == 'd' ? TSF__PV_DICT : TSF__PV_LIST);
            if (v < 0 || !tsf__pv_pop_mark(P, &from) || !tsf__pv_collect(P, v, from) ||
                !tsf__pv_push(P, v))
                return 0;
            break;
        case 'a': /* APPEND */
            if ((x = tsf__pv_pop(P)) < 0 || P->sp == 0) return P->error = "APPEND", 0;
            v = P->stack[P->sp - 1];
            if (P->v[v].kind == TSF__PV_LIST && !tsf__pv_append(P, v, -1, x)) return 0;
            break;
        case 'e':
        case 0x90:
        case 'u': /* APPENDS, ADDITEMS, SETITEMS (from a mark) */
            if (!tsf__pv_pop_mark(P, &from) || from == 0) return P->error = "no container", 0;
            v = P->stack[from - 1];
            if ((op == 'u') != (P->v[v].kind == TSF__PV_DICT) ||
                (P->v[v].kind != TSF__PV_LIST && P->v[v].kind != TSF__PV_DICT)) {
                P->sp = from; /* items of an opaque object: dropped */
                break;
            }
            if (!tsf__pv_collect(P, v, from)) return 0;
            break;
        case 's': /* SETITEM */
            if ((y = tsf__pv_pop(P)) < 0 || (x = tsf__pv_pop(P)) < 0 || P->sp == 0)
                return P->error = "SETITEM", 0;
            v = P->stack[P->sp - 1];
            if (P->v[v].kind == TSF__PV_DICT && !tsf__pv_append(P, v, x, y)) return 0;
            break;
        case 'p':
        case 'g': { /* PUT, GET: text index */
            char buf[24], *end;
            if (!tsf__pickle_line(P, &p, &a, &n) || n == 0 || n >= sizeof buf)
                return P->error = "bad memo index", 0;
            memcpy(buf, P->s + a, n), buf[n] = 0;
            u = strtoull(buf, &end, 10);
            if (*end) return P->error = "bad memo index", 0;
            if (!(op == 'p' ? tsf__pv_memo_put(P, u) : tsf__pv_memo_get(P, u))) return 0;
            break;
        }
        case 'q':
        case 'r':
            if (!tsf__pv_memo_put(P, u)) return 0;
            break; /* BINPUT, LONG_ */
        case 'h':
        case 'j':
            if (!tsf__pv_memo_get(P, u)) return 0;
            break; /* BINGET, LONG_ */
        case 0x94:
            if (!tsf__pv_memo_put(P, (unsigned long long)P->nmemo++)) return 0;
            break;
        case 'c': { /* GLOBAL: "module\nname\n" */
            size_t a2, n2;
            if (!tsf__pickle_line(P, &p, &a, &n) || !tsf__pickle_line(P, &p, &a2, &n2)) return 0;
            x = tsf__pv_str(P, TSF__PV_STR, a, n), y = tsf__pv_str(P, TSF__PV_STR, a2, n2);
            if (x < 0 || y < 0 || (v = tsf__pv_new(P, TSF__PV_GLOBAL)) < 0) return 0;
            P->v[v].a = x, P->v[v].b = y;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if ((y = tsf__pv_pop(P)) < 0 || (x = tsf__pv_pop(P)) < 0) return 0;
            if ((v = tsf__pv_new(P, TSF__PV_GLOBAL)) < 0) return 0;
            if (P->v[x].kind != TSF__PV_STR || P->v[y].kind != TSF__PV_STR)
                P->v[v].kind = TSF__PV_OBJECT; /* not a name: opaque */
            else
                P->v[v].a = x, P->v[v].b = y;
            if (!tsf__pv_push(P, v)) return 0;
            break;
        case 'R': /* REDUCE: f(*args) */
            if ((y = tsf__pv_pop(P)) < 0 || (x = tsf__pv_pop(P)) < 0) return 0;
            if (!tsf__pv_push(P, tsf__pv_call(P, x, y))) return 0;
            break;
        case 0x81: /* NEWOBJ: cls.__new__(cls, *args); the args are dropped */
            if (tsf__pv_pop(P) < 0 || (x = tsf__pv_pop(P)) < 0) return 0;
            if (!tsf__pv_push(P, tsf__pv_call(P, x, -1))) return 0;
            break;
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            if (tsf__pv_pop(P) < 0 || tsf__pv_pop(P) < 0 || (x = tsf__pv_pop(P)) < 0) return 0;
            if (!tsf__pv_push(P, tsf__pv_call(P, x, -1))) return 0;
            break;
        case 'o': /* OBJ: cls and args from a mark */
            if (!tsf__pv_pop_mark(P, &from) || from >= P->sp) return P->error = "OBJ", 0;
            x = P->stack[from];
            P->sp = from;
            if (!tsf__pv_push(P, tsf__pv_call(P, x, -1))) return 0;
            break;
        case 'i': { /* INST: "module\nname\n", args from a mark */
            size_t a2, n2;
            if (!tsf__pickle_line(P, &p, &a, &n) || !tsf__pickle_line(P, &p, &a2, &n2) ||
                !tsf__pv_pop_mark(P, &from))
                return 0;
            P->sp = from;
            x = tsf__pv_str(P, TSF__PV_STR, a, n), y = tsf__pv_str(P, TSF__PV_STR, a2, n2);
            if (x < 0 || y < 0 || (v = tsf__pv_new(P, TSF__PV_GLOBAL)) < 0) return 0;
            P->v[v].a = x, P->v[v].b = y;
            if (!tsf__pv_push(P, tsf__pv_call(P, v, -1))) return 0;
            break;
        }
        case 'b': /* BUILD: obj.__setstate__(state): the state is dropped */
            if (tsf__pv_pop(P) < 0 || P->sp == 0) return P->error = "BUILD", 0;
            break;
        case 'Q': /* BINPERSID */
            if ((x = tsf__pv_pop(P)) < 0 || !tsf__pv_push(P, tsf__pv_persistent(P, x))) return 0;
            break;
        case 'P': /* PERSID: a text id, never a storage of torch.save's */
            if (!tsf__pickle_line(P, &p, &a, &n)) return 0;
            if (!tsf__pv_push(P, tsf__pv_new(P, TSF__PV_OBJECT))) return 0;
            break;
        case 0x82:
        case 0x83:
        case 0x84: /* EXT1, EXT2, EXT4: the extension registry */
            if (!tsf__pv_push(P, tsf__pv_new(P, TSF__PV_OBJECT))) return 0;
            break;
        default: /* NEXT_BUFFER, READONLY_BUFFER (out-of-band data) and unknown opcodes */
            return P->error = "an opcode this reader does not know", 0;
        }
    }
    return P->error = "no STOP", 0;
}

/* The dict of tensors inside a loaded object: the object itself, or what it holds under
   model_state (the original's checkpoints), state_dict, model or module, up to 3 levels. */
static int tsf__pt_state_dict(const tsf__pickle *P, int v, int depth) {
    static const char *const wrappers[] = {"model_state", "state_dict", "model", "module"};
    int i, k, w;
    if (v < 0 || P->v[v].kind != TSF__PV_DICT) return -1;
    for (i = P->v[v].a; i >= 0; i = P->it[i].next)
        if (P->v[P->it[i].val].kind == TSF__PV_TENSOR) return v;
    for (k = 0; k < 4 && depth < 3; k++)
        if ((w = tsf__pt_state_dict(P, tsf__pv_get(P, v, wrappers[k]), depth + 1)) >= 0) return w;
    return -1;
}

/* Add the tensor (or the reason it is none) stored under one name of the state dict. */
static tsf_status tsf__pt_entry(tsf__wlist *l, const tsf__pickle *P, const tsf__zip *z,
                                const char *prefix, int key, int val, int big) {
    const tsf__pv *t = &P->v[val], *s;
    tsf__wtensor *w = tsf__wlist_add(l, (const char *)P->s + P->v[key].a, (size_t)P->v[key].b);
    unsigned long long data, bytes, reach;
    const char *why;
    char entry[600];
    int d, n, esize, empty = 0;
    if (!w) return TSF_ERR_ALLOC;
    w->file = l->nfiles - 1, w->big = big;
    if (t->kind != TSF__PV_TENSOR) {
        const tsf__pv *g =
            t->kind == TSF__PV_OBJECT && t->a >= 0 && P->v[t->a].kind == TSF__PV_GLOBAL
                ? &P->v[t->a]
                : NULL;
        char made[200];
        if (g)
            snprintf(made, sizeof made, "%.*s.%.*s", P->v[g->a].b,
                     (const char *)P->s + P->v[g->a].a, P->v[g->b].b,
                     (const char *)P->s + P->v[g->b].a);
        if (!(g ? tsf__wlist_why(l, w, "not a tensor but a value made by ", made,
                                 " (the reader calls nothing: nothing was run)")
                : tsf__wlist_why(l, w, "not a tensor", "", "")))
            return TSF_ERR_ALLOC;
        return TSF_OK;
    }
    why = NULL;
    s = t->a >= 0 ? &P->v[t->a] : NULL;
    n = tsf__pv_count(P, t->b, TSF__WMAX_DIMS);
    if (!s || s->kind != TSF__PV_STORAGE)
        why = "a tensor without a saved storage";
    else if (s->b == TSF__DT_NONE)
        return TSF_OK; /* an integer tensor: dtype NONE */
    else if (n > TSF__WMAX_DIMS || n != tsf__pv_count(P, t->c, TSF__WMAX_DIMS) || t->i < 0)
        why = "a tensor with malformed sizes, strides or offset";
    if (why) return tsf__wlist_why(l, w, why, "", "") ? TSF_OK : TSF_ERR_ALLOC;
    w->dtype = s->b, w->ndim = n;
    esize = w->dtype == TSF__DT_F32 ? 4 : w->dtype == TSF__DT_F64 ? 8 : 2;
    reach = (unsigned long long)t->i; /* the last element's index in the storage */
    for (d = 0; d < n; d++) {
        const tsf__pv *sz = &P->v[tsf__pv_at(P, t->b, d)], *sd = &P->v[tsf__pv_at(P, t->c, d)];
        if (sz->kind != TSF__PV_INT || sd->kind != TSF__PV_INT || sz->i < 0 || sz->i > 1LL << 40 ||
            sd->i < 0 || sd->i > 1LL << 40)
            return tsf__wlist_why(l, w, "a tensor with malformed sizes or strides", "", "")
                       ? TSF_OK
                       : TSF_ERR_ALLOC;
        w->shape[d] = sz->i, w->stride[d] = sd->i;
        if (sz->i == 0)
            empty = 1;
        else if (reach > 1ULL << 62 ||
                 (unsigned long long)sd->i > (1ULL << 62) / (unsigned long long)sz->i)
            reach = ~0ULL;
        else
            reach += (unsigned long long)(sz->i - 1) * (unsigned long long)sd->i;
    }
    snprintf(entry, sizeof entry, "%sdata/%.*s", prefix, P->v[s->a].b,
             (const char *)P->s + P->v[s->a].a);
    if (!tsf__zip_find(z, &l->files[w->file], entry, &data, &bytes, &why))
        return tsf__wlist_why(l, w, "its storage ", entry + strlen(prefix), why) ? TSF_OK
                                                                                 : TSF_ERR_ALLOC;
    if ((unsigned long long)s->i > bytes / (unsigned long long)esize ||
        (!empty && reach >= (unsigned long long)s->i))
        return tsf__wlist_why(l, w, "its sizes, strides and offset reach beyond its storage ",
                              entry + strlen(prefix), "")
                   ? TSF_OK
                   : TSF_ERR_ALLOC;
    w->off = data + (unsigned long long)t->i * esize;
    return TSF_OK;
}

#define TSF__PT_MAX_PICKLE (64u << 20) /* a state dict's pickle is ~100 bytes a tensor */

/* List the tensors of a torch.save archive (file l->nfiles - 1 of the list): read the
   central directory, find data.pkl (under any folder), run it, find the state dict. */
static tsf_status tsf__pt_list(tsf__wlist *l, tsf_error *err) {
    const tsf__source *src = &l->files[l->nfiles - 1];
    tsf__zip z;
    tsf__pickle P;
    unsigned long long off = 0, size = 0;
    char prefix[512], name[600], text[16];
    const char *why;
    int k, root, sd, big = 0, i;
    tsf_status st;
    memset(&z, 0, sizeof z), memset(&P, 0, sizeof P);
    z.ctx = P.ctx = l->ctx;
    if ((st = tsf__zip_open(&z, src, err)) != TSF_OK) return st;
    for (k = 0; k < z.n; k++) { /* "<folder>/data.pkl": the folder is the file's own name */
        const char *slash = strchr(z.e[k].name, '/');
        if (slash && strcmp(slash + 1, "data.pkl") == 0 && (size_t)(slash - z.e[k].name) < 500)
            break;
    }
    if (k == z.n) {
        tsf__zip_free(&z);
        return tsf__seterr(err, "a zip archive without <folder>/data.pkl (not a torch.save file)",
                           "", ""),
               TSF_ERR_FORMAT;
    }
    snprintf(prefix, sizeof prefix, "%.*s/", (int)(strchr(z.e[k].name, '/') - z.e[k].name),
             z.e[k].name);
    snprintf(name, sizeof name, "%sbyteorder", prefix); /* absent: little-endian */
    if (tsf__zip_find(&z, src, name, &off, &size, &why)) {
        if (size > 6 || !tsf__source_read(src, off, text, (size_t)size) ||
            ((big = size == 3 && memcmp(text, "big", 3) == 0) == 0 &&
             !(size == 6 && memcmp(text, "little", 6) == 0))) {
            tsf__zip_free(&z);
            return tsf__seterr(err, "torch archive: byteorder is neither little nor big", "", ""),
                   TSF_ERR_FORMAT;
        }
    }
    snprintf(name, sizeof name, "%sversion", prefix); /* the archive format: 1 .. 10 */
    if (tsf__zip_find(&z, src, name, &off, &size, &why)) {
        if (size == 0 || size > 4 || !tsf__source_read(src, off, text, (size_t)size) ||
            (text[0] < '1' || text[0] > '9') ||
            (size > 1 && !(text[1] == '\n' || (text[0] == '1' && text[1] == '0')))) {
            tsf__zip_free(&z);
            return tsf__seterr(err, "torch archive: a format version this reader does not know", "",
                               ""),
                   TSF_ERR_FORMAT;
        }
    }
    snprintf(name, sizeof name, "%sdata.pkl", prefix);
    if (!tsf__zip_find(&z, src, name, &off, &size, &why) ||
        (size > TSF__PT_MAX_PICKLE && (why = "is too large") != NULL)) {
        tsf__zip_free(&z);
        return tsf__seterr(err, "torch archive: data.pkl ", why, ""), TSF_ERR_FORMAT;
    }
    P.len = (size_t)size, P.cap = (int)size + 16;
    P.s = (const unsigned char *)TSF_MALLOC(P.len + 1, l->ctx);
    P.v = (tsf__pv *)TSF_MALLOC((size_t)P.cap * sizeof *P.v, l->ctx);
    P.it = (tsf__pitem *)TSF_MALLOC((size_t)P.cap * sizeof *P.it, l->ctx);
    P.stack = (int *)TSF_MALLOC((size_t)P.cap * sizeof(int), l->ctx);
    P.marks = (int *)TSF_MALLOC((size_t)P.cap * sizeof(int), l->ctx);
    if (!P.s || !P.v || !P.it || !P.stack || !P.marks)
        st = TSF_ERR_ALLOC;
    else if (!tsf__source_read(src, off, (void *)(uintptr_t)P.s, P.len)) {
        tsf__seterr(err, "torch archive: cannot read data.pkl", "", "");
        st = TSF_ERR_IO;
    } else if (!tsf__pickle_run(&P)) {
        if (P.error && !*P.error)
            st = TSF_ERR_ALLOC; /* the memo could not grow */
        else
            tsf__seterr(err, "torch archive: data.pkl is refused: ", P.error, ""),
                st = TSF_ERR_FORMAT;
    }
    if (st == TSF_OK) {
        root = P.stack[P.sp - 1];
        if ((sd = tsf__pt_state_dict(&P, root, 0)) < 0) {
            tsf__seterr(err,
                        "torch archive: no dict of tensors (a state dict) in data.pkl, nor "
                        "under model_state, state_dict, model or module",
                        "", "");
            st = TSF_ERR_FORMAT;
        }
        for (i = st == TSF_OK ? P.v[sd].a : -1; i >= 0 && st == TSF_OK; i = P.it[i].next)
            if (P.v[P.it[i].key].kind == TSF__PV_STR && P.v[P.it[i].key].b < 500 &&
                !memchr(P.s + P.v[P.it[i].key].a, 0, (size_t)P.v[P.it[i].key].b))
                st = tsf__pt_entry(l, &P, &z, prefix, P.it[i].key, P.it[i].val, big);
    }
    if (P.s) TSF_FREE((void *)(uintptr_t)P.s, l->ctx);
    if (P.v) TSF_FREE(P.v, l->ctx);
    if (P.it) TSF_FREE(P.it, l->ctx);
    if (P.stack) TSF_FREE(P.stack, l->ctx);
    if (P.marks) TSF_FREE(P.marks, l->ctx);
    if (P.memo) TSF_FREE(P.memo, l->ctx);
    tsf__zip_free(&z);
    return st;
}

/* A config from the tensors' shapes, for a checkpoint that comes without one (the original
   code's .pyth files): D, C, P, the image size (from the position table), T0 (from the
   time table), K, the MLP width, the depth, whether the qkv projections have biases, and
   the attention (temporal tensors: divided; a time table but no temporal tensors: joint;
   neither: space_only). The number of heads is not in any shape: it is taken as D / 64,
   the head width of ViT-B and of every released TimeSformer; any other D is refused. */
static tsf_status tsf__infer_config(tsf_config *c, const tsf__wlist *l, tsf_error *err) {
    const tsf__wtensor *cls = NULL, *pos = NULL, *tim = NULL, *patch = NULL, *head = NULL,
                       *fc1 = NULL;
    int e, layer, depth = 0, temporal = 0, local = 0, width = 0, qkv_bias = 0;
    long long D, g;
    char hf[96], msg[160];
    for (e = 0; e < l->n; e++) {
        const tsf__wtensor *w = &l->t[e];
        if (w->why || !tsf__to_hf_name(l->text + w->name, hf)) continue;
        if (strcmp(hf, "timesformer.embeddings.cls_token") == 0) cls = w;
        if (strcmp(hf, "timesformer.embeddings.position_embeddings") == 0) pos = w;
        if (strcmp(hf, "timesformer.embeddings.time_embeddings") == 0) tim = w;
        if (strcmp(hf, "timesformer.embeddings.patch_embeddings.projection.weight") == 0) patch = w;
        if (strcmp(hf, "classifier.weight") == 0) head = w;
        if (strcmp(hf, "timesformer.encoder.layer.0.intermediate.dense.weight") == 0) fc1 = w;
        if (sscanf(hf, "timesformer.encoder.layer.%d.", &layer) == 1 && layer >= 0 &&
            layer < 1024) {
            depth = layer + 1 > depth ? layer + 1 : depth;
            temporal |= strstr(hf, ".temporal_") != NULL;
            local |= strstr(hf, ".local_") != NULL;
            width |= strstr(hf, ".width_") != NULL;
            qkv_bias |= strstr(hf, "attention.attention.qkv.bias") != NULL;
        }
    }
    if (!cls || !pos || !patch || !head || !fc1 || cls->ndim != 3 || patch->ndim != 4 ||
        pos->ndim != 3 || head->ndim != 2 || fc1->ndim != 2 || (tim && tim->ndim != 3))
        return tsf__seterr(err,
                           "no config, and the tensors do not tell one (a config.json beside "
                           "the checkpoint, in a model folder, gives it)",
                           "", ""),
               TSF_ERR_CONFIG;
    D = cls->shape[2];
    for (g = 1; (g + 1) * (g + 1) <= pos->shape[1] - 1; g++) {
    }
    if (D < 64 || D % 64 || g * g != pos->shape[1] - 1 || patch->shape[2] != patch->shape[3] ||
        D > TSF__MAX_DIM || g * patch->shape[2] > TSF__MAX_DIM || fc1->shape[0] > TSF__MAX_DIM) {
        snprintf(msg, sizeof msg,
                 "no config, and the tensors do not tell one (width D %lld: the "
                 "heads are D / 64 only for a multiple of 64; ",
                 D);
        return tsf__seterr(err, msg,
                           "a config.json beside the checkpoint, in a model folder, "
                           "gives it)",
                           ""),
               TSF_ERR_CONFIG;
    }
    memset(c, 0, sizeof *c);
    c->dim = (int)D, c->heads = (int)(D / 64), c->depth = depth;
    c->channels = (int)patch->shape[1], c->patch_size = (int)patch->shape[2];
    c->image_size = (int)(g * patch->shape[2]);
    c->frames = tim ? (int)tim->shape[1] : 8;
    c->classes = (int)head->shape[0];
    c->mlp_ratio = tsf__mlp_ratio((int)D, (int)fc1->shape[0]);
    c->no_qkv_bias = !qkv_bias;
    c->attention = width      ? TSF_ATTN_AXIAL
                   : local    ? TSF_ATTN_LOCAL_GLOBAL
                   : temporal ? TSF_ATTN_DIVIDED
                   : tim      ? TSF_ATTN_JOINT
                              : TSF_ATTN_SPACE;
    /* a scheme with a temporal axis and no time embedding: pos_embed space (joint without
       one reads as space_only, which has none either) */
    c->pos_embed = (width || local || temporal) && !tim ? TSF_POS_SPACE : TSF_POS_SPACE_TIME;
    return TSF_OK;
}

/* Make m from a list of tensors: the config given (else inferred from the shapes), a model
   of that config, its parameters from the list, class names from labels_json (may be NULL). */
static tsf_status tsf__model_from_list(tsf_model *m, const tsf__wlist *l, const tsf_config *cfg,
                                       const char *labels_json, size_t labels_len, int B,
                                       tsf_error *err) {
    tsf_config c;
    tsf_status st = TSF_OK;
    double bytes = 0;
    int f, e;
    char hf[96];
    for (e = 0; e < l->n; e++) /* a parameter that is no tensor (a hostile value): named first */
        if (l->t[e].why && tsf__to_hf_name(l->text + l->t[e].name, hf))
            return tsf__seterr(err, l->text + l->t[e].name, ": ", l->text + l->t[e].why),
                   TSF_ERR_FORMAT;
    if (cfg)
        c = *cfg;
    else if ((st = tsf__infer_config(&c, l, err)) != TSF_OK)
        return st;
    c.alloc_ctx = l->ctx;
    if ((st = tsf_config_resolve(&c)) != TSF_OK)
        return tsf__seterr(err, "invalid model configuration: ", tsf_status_string(st), ""), st;
    for (f = 0; f < l->nfiles; f++) bytes += (double)l->files[f].size;
    if ((double)tsf_config_num_params(&c) * 2 > bytes) /* no huge model for a tiny file */
        return tsf__seterr(err, "the file is too small for the config's parameter shapes", "", ""),
               TSF_ERR_FORMAT;
    if ((st = tsf__model_create(m, &c, B)) != TSF_OK) return st;
    if ((st = tsf__wlist_fill(m, l, err)) == TSF_OK && labels_json)
        st = tsf__labels_load(m, labels_json, labels_len, err);
    if (st != TSF_OK) tsf_model_free(m);
    return st;
}

/* The first bytes of a legacy torch.save file (before PyTorch 1.6): a pickled magic number. */
static const unsigned char tsf__pt_legacy_magic[4] = {0x80, 0x02, 0x8a, 0x0a};

/* Load a model from the bytes of one weight file of any format: a zip archive is a
   torch.save checkpoint, anything else safetensors (ts: a checkpoint of the library's). */
static tsf_status tsf__load_source(tsf_model *m, const tsf__source *src, const tsf_config *cfg,
                                   const char *labels_json, size_t labels_len, int B,
                                   tsf_train_state *ts, tsf_error *err) {
    unsigned char head[4];
    int n = tsf__source_read(src, 0, head, 4);
    if (n && memcmp(head, "PK", 2) == 0 && (head[2] == 3 || head[2] == 5)) {
        tsf__wlist l;
        tsf_status st;
        if (ts)
            return tsf__seterr(err, "a training checkpoint is a safetensors file of this library's",
                               "", ""),
                   TSF_ERR_FORMAT;
        memset(&l, 0, sizeof l);
        l.ctx = cfg ? cfg->alloc_ctx : NULL, l.files[0] = *src, l.nfiles = 1;
        st = tsf__pt_list(&l, err);
        if (st == TSF_OK) st = tsf__model_from_list(m, &l, cfg, labels_json, labels_len, B, err);
        tsf__wlist_free(&l);
        return st;
    }
    if (n && memcmp(head, tsf__pt_legacy_magic, 4) == 0)
        return tsf__seterr(err,
                           "a torch.save file in the legacy format of PyTorch before 1.6: "
                           "not supported (load it and torch.save it again with a newer "
                           "PyTorch)",
                           "", ""),
               TSF_ERR_FORMAT;
    return tsf__st_load(m, src, cfg, labels_json, labels_len, B, ts, err);
}

TSFDEF tsf_status tsf_model_load_memory(tsf_model *m, const void *data, size_t size,
                                        const tsf_config *cfg, int B, tsf_error *err) {
    tsf__source src;
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m); /* first, as in tsf_model_init: tsf_model_free(m) is then safe */
    if (!data) return TSF_ERR_ARG;
    if (err) err->msg[0] = 0;
    src.mem = (const unsigned char *)data, src.file = NULL, src.size = size;
    return tsf__load_source(m, &src, cfg, NULL, 0, B, NULL, err);
}

/* ---- safetensors out, and files ---------------------------------------------------------- */
#ifndef TSF_NO_STDIO
/* fopen(path, "rb") of a regular file only: a FIFO would wait for a writer forever, a device
   never end. NULL with *why the reason (strerror's, or "not a regular file ..."). */
static FILE *tsf__fopen_regular(const char *path, const char **why) {
    FILE *f;
#if defined(__unix__) || defined(__APPLE__)
    struct stat sb;
    if (stat(path, &sb) != 0) return *why = strerror(errno), (FILE *)NULL;
    if (!S_ISREG(sb.st_mode))
        return *why = S_ISDIR(sb.st_mode) ? "a folder, not a file"
                                          : "not a regular file (a FIFO, a device, ...)",
               (FILE *)NULL;
#endif
    if (!(f = fopen(path, "rb"))) *why = strerror(errno);
    return f;
}

/* The same, with err naming the file: "PATH: cannot open: REASON". */
static FILE *tsf__open_file(const char *path, tsf_error *err) {
    const char *why = "";
    FILE *f = tsf__fopen_regular(path, &why);
    if (!f)
        tsf__seterr(err, path,
                    strncmp(why, "a folder", 8) && strncmp(why, "not a regular", 13)
                        ? ": cannot open: "
                        : ": ",
                    why);
    return f;
}

/* 1 when a writer may put a file at path: nothing is there, or a regular file is (never a
   FIFO, a device or a folder; a symbolic link to a regular file is replaced by the new file,
   its target left alone, as rename does). */
static int tsf__replaceable(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat sb;
    return stat(path, &sb) != 0 || S_ISREG(sb.st_mode);
#else
    (void)path;
    return 1;
#endif
}

/* Read a small text file (a config.json) into a NUL-terminated buffer *out; err (may be
   NULL) names the file and the reason on failure. A failure leaves nothing allocated, and
   *out NULL or as it was (callers free a non-NULL *out: never a freed one). */
static tsf_status tsf__read_text(const char *path, char **out, size_t *len, void *ctx,
                                 tsf_error *err) {
    FILE *f = tsf__open_file(path, err);
    long n;
    if (!f) return TSF_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (10L << 20) ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return tsf__seterr(err, path, ": larger than 10 MB", ""), TSF_ERR_FORMAT;
    }
    *out = (char *)TSF_MALLOC((size_t)n + 1, ctx);
    if (!*out) {
        fclose(f);
        return TSF_ERR_ALLOC;
    }
    if (fread(*out, 1, (size_t)n, f) != (size_t)n) {
        fclose(f); /* shorter than its size said (it shrank, a read error, a sysfs file) */
        TSF_FREE(*out, ctx), *out = NULL;
        return tsf__seterr(err, path, ": cannot read", ""), TSF_ERR_IO;
    }
    fclose(f);
    (*out)[n] = 0;
    *len = (size_t)n;
    return TSF_OK;
}

/* 1 when path names a file or folder that exists. */
static int tsf__exists(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    struct stat sb;
    return stat(path, &sb) == 0;
#else
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
#endif
}

/* Put the file's name in front of the reason in err. */
static void tsf__err_file(tsf_error *err, const char *path) {
    char reason[sizeof err->msg];
    size_t n = strlen(path) < 18 ? strlen(path) : 18; /* a long path is shortened, head kept */
    if (!err || strncmp(err->msg, path, n) == 0) return;
    memcpy(reason, err->msg, sizeof reason);
    tsf__seterr(err, path, ": ", reason);
}

/* Open a weight file as a source; its size from seeking to the end. */
static tsf_status tsf__source_open(tsf__source *src, const char *path, tsf_error *err) {
    FILE *f = tsf__open_file(path, err);
    long n;
    if (!f) return TSF_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
        fclose(f);
        return tsf__seterr(err, path, ": cannot seek", ""), TSF_ERR_IO;
    }
    src->mem = NULL, src->file = f, src->size = (unsigned long long)n;
    return TSF_OK;
}

static tsf_status tsf__load_file(tsf_model *m, const char *path, const tsf_config *cfg,
                                 const char *labels_json, size_t labels_len, int B,
                                 tsf_train_state *ts, tsf_error *err) {
    tsf__source src;
    tsf_status st = tsf__source_open(&src, path, err);
    if (st != TSF_OK) return st;
    st = tsf__load_source(m, &src, cfg, labels_json, labels_len, B, ts, err);
    fclose((FILE *)src.file);
    if (st != TSF_OK) tsf__err_file(err, path); /* name the file in front of the reason */
    return st;
}

/* The preprocessing of a Hugging Face preprocessor_config.json (VideoMAEImageProcessor, as
   TimeSformer's hub folders carry): the short side the frames are resized to (size, an
   integer or {"shortest_edge": n}), the centre crop (crop_size, an integer or a square
   {"height": n, "width": n}), the rescale factor (1/255 unless given; do_rescale false: 1)
   and image_mean / image_std (do_normalize false: 0 and 1). A rescale factor other than
   1/255 is folded into mean and std: (p * r - mean) / std = (p / 255 - mean') / std' with
   mean' = mean / (255 r), std' = std / (255 r). What the library cannot do (no resize, no
   crop, a crop that is not square) is refused by name. */
static tsf_status tsf__preprocessor_apply(tsf_config *c, const tsf__json *j, tsf_error *err) {
    static const char *const flags[3] = {"do_resize", "do_center_crop", "do_rescale"};
    int t, k, i, on[4] = {1, 1, 1, 1};
    long long v;
    double r = 1.0 / 255, x;
    if (j->tok[0].type != TSF__J_OBJ)
        return tsf__seterr(err, "not a JSON object", "", ""), TSF_ERR_FORMAT;
    for (k = 0; k < 4; k++) /* do_resize, do_center_crop, do_rescale, do_normalize */
        if ((t = tsf__json_get(j, 0, k < 3 ? flags[k] : "do_normalize")) >= 0 &&
            !tsf__json_bool(j, t, &on[k]))
            return tsf__seterr(err, k < 3 ? flags[k] : "do_normalize", " must be true or false",
                               ""),
                   TSF_ERR_FORMAT;
    if (!on[0] || !on[1])
        return tsf__seterr(err, on[0] ? "do_center_crop" : "do_resize",
                           " false: not supported (the library resizes the short side, then "
                           "takes the centre square)",
                           ""),
               TSF_ERR_CONFIG;
    for (k = 0; k < 2; k++) { /* size, crop_size */
        const char *key = k ? "crop_size" : "size";
        int *dst = k ? &c->crop_size : &c->short_side, h, w;
        if ((t = tsf__json_get(j, 0, key)) < 0) continue;
        if (j->tok[t].type == TSF__J_OBJ) {
            h = tsf__json_get(j, t, "height"), w = tsf__json_get(j, t, "width");
            if (k == 0 && h < 0) h = w = tsf__json_get(j, t, "shortest_edge");
            if (!tsf__json_int(j, h, 1, TSF__MAX_DIM, &v) || !tsf__json_int(j, w, v, v, &v) ||
                (k == 0 && tsf__json_get(j, t, "height") >= 0))
                return tsf__seterr(err, key,
                                   k ? " must be a square {\"height\": n, \"width\": n}"
                                     : " must be {\"shortest_edge\": n}",
                                   " (other sizes are not supported)"),
                       TSF_ERR_CONFIG;
        } else if (!tsf__json_int(j, t, 1, TSF__MAX_DIM, &v)) {
            return tsf__seterr(err, "bad value for ", key, ""), TSF_ERR_FORMAT;
        }
        *dst = (int)v;
    }
    if ((t = tsf__json_get(j, 0, "rescale_factor")) >= 0 && on[2]) {
        if (!tsf__json_num(j, t, &r) || !(r > 0 && r < 1e6))
            return tsf__seterr(err, "bad value for rescale_factor", "", ""), TSF_ERR_FORMAT;
    }
    if (!on[2]) r = 1;
    for (k = 0; k < 2; k++) { /* image_mean, image_std: 3 numbers (or 1 for every channel) */
        float *dst = k ? c->std : c->mean;
        if (!on[3]) {
            for (i = 0; i < 3; i++) dst[i] = k ? 1.0f : 0.0f;
            continue;
        }
        if ((t = tsf__json_get(j, 0, k ? "image_std" : "image_mean")) < 0) continue;
        for (i = 0; i < 3; i++) {
            int e =
                j->tok[t].type == TSF__J_ARR ? tsf__json_at(j, t, j->tok[t].size == 1 ? 0 : i) : t;
            if ((j->tok[t].type == TSF__J_ARR && j->tok[t].size != 1 && j->tok[t].size != 3) ||
                !tsf__json_num(j, e, &x) || !(k ? x > 0 && x < 1e30 : x > -1e30 && x < 1e30))
                return tsf__seterr(err, "bad value for ", k ? "image_std" : "image_mean", ""),
                       TSF_ERR_FORMAT;
            dst[i] = (float)x;
        }
    }
    if (fabs(r * 255 - 1) > 1e-9) /* fold the rescale into mean and std */
        for (i = 0; i < 3; i++)
            c->mean[i] = (float)((double)c->mean[i] / (255 * r)),
            c->std[i] = (float)((double)c->std[i] / (255 * r));
    return TSF_OK;
}

/* Read path (a JSON file) and apply it to *cfg: a config.json (labels: keeps the text for
   its id2label), or with pre = 1 a preprocessor_config.json. Errors name the file. */
static tsf_status tsf__json_file_apply(tsf_config *cfg, const char *path, int pre, char **text,
                                       size_t *len, tsf_error *err) {
    tsf__json j;
    tsf_status st;
    if ((st = tsf__read_text(path, text, len, cfg->alloc_ctx, err)) != TSF_OK) return st;
    st = tsf__json_parse(&j, *text, *len, cfg->alloc_ctx);
    if (st != TSF_OK)
        tsf__seterr(err, st == TSF_ERR_ALLOC ? "out of memory" : "not valid JSON", "", "");
    else if (pre)
        st = tsf__preprocessor_apply(cfg, &j, err);
    else
        st = tsf__config_apply(cfg, &j, 0, NULL, err);
    if (j.tok) TSF_FREE(j.tok, cfg->alloc_ctx);
    if (st != TSF_OK) {
        TSF_FREE(*text, cfg->alloc_ctx), *text = NULL;
        tsf__err_file(err, path);
    }
    return st;
}

TSFDEF tsf_status tsf_config_load(tsf_config *cfg, const char *path, tsf_error *err) {
    char *txt = NULL;
    size_t len;
    tsf_status st;
    if (err) err->msg[0] = 0;
    st = tsf__json_file_apply(cfg, path, 0, &txt, &len, err);
    if (txt) TSF_FREE(txt, cfg->alloc_ctx);
    if (st == TSF_OK && (st = tsf_config_resolve(cfg)) != TSF_OK)
        tsf__seterr(err, path, ": invalid model configuration", "");
    return st;
}

/* A sharded folder: index (NAME.index.json) maps every tensor to one of its shard files,
   each a safetensors or torch.save file in the same folder; the model is filled from the
   tensors of all of them. */
static tsf_status tsf__load_sharded(tsf_model *m, const char *folder, const char *index,
                                    const tsf_config *cfg, const char *labels_json,
                                    size_t labels_len, int B, tsf_error *err) {
    tsf__wlist l;
    tsf__json j, js;
    char *txt = NULL, *names = NULL, path[4096];
    size_t len;
    int map = -1, t, k, f;
    tsf_status st;
    memset(&l, 0, sizeof l), memset(&j, 0, sizeof j);
    l.ctx = cfg->alloc_ctx;
    if ((st = tsf__read_text(index, &txt, &len, l.ctx, err)) != TSF_OK) return st;
    if ((st = tsf__json_parse(&j, txt, len, l.ctx)) == TSF_OK &&
        ((map = tsf__json_get(&j, 0, "weight_map")) < 0 || j.tok[map].type != TSF__J_OBJ))
        st = TSF_ERR_FORMAT;
    if (st == TSF_ERR_FORMAT)
        tsf__seterr(err, index, ": not an index (a JSON object with a weight_map)", "");
    if (st == TSF_OK && !(names = (char *)TSF_MALLOC((size_t)TSF__WMAX_FILES * 256, l.ctx)))
        st = TSF_ERR_ALLOC;
    for (k = 0, t = map + 1; st == TSF_OK && k < j.tok[map].size; k++, t = j.tok[t + 1].next) {
        char *name = names + (size_t)l.nfiles * 256;
        const tsf__source *src = &l.files[l.nfiles];
        if (!tsf__json_str(&j, t + 1, name, 256) || !name[0] || strchr(name, '/') ||
            strchr(name, '\\') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
            tsf__seterr(err, index, ": a weight_map entry that is not a file of the folder", "");
            st = TSF_ERR_FORMAT;
            break;
        }
        for (f = 0; f < l.nfiles && strcmp(names + (size_t)f * 256, name) != 0; f++) {
        }
        if (f < l.nfiles) continue; /* a shard already read */
        if (l.nfiles == TSF__WMAX_FILES) {
            tsf__seterr(err, index, ": more than 256 shards", "");
            st = TSF_ERR_FORMAT;
            break;
        }
        snprintf(path, sizeof path, "%s/%s", folder, name);
        if ((st = tsf__source_open(&l.files[l.nfiles], path, err)) != TSF_OK) break;
        l.nfiles++;
        if (tsf__source_read(src, 0, path, 2) && memcmp(path, "PK", 2) == 0) {
            st = tsf__pt_list(&l, err);
        } else {
            char *hdr = NULL;
            unsigned long long n = 0;
            memset(&js, 0, sizeof js);
            if ((st = tsf__st_header(src, &hdr, &n, &js, l.ctx, err)) == TSF_OK)
                st = tsf__st_list(&l, &js, l.nfiles - 1, 8 + n, err);
            if (js.tok) TSF_FREE(js.tok, l.ctx);
            if (hdr) TSF_FREE(hdr, l.ctx);
        }
        if (st != TSF_OK) {
            snprintf(path, sizeof path, "%s/%s", folder, name);
            tsf__err_file(err, path);
        }
    }
    if (st == TSF_OK) {
        st = tsf__model_from_list(m, &l, cfg, labels_json, labels_len, B, err);
        if (st != TSF_OK) tsf__err_file(err, index);
    }
    for (f = 0; f < l.nfiles; f++) fclose((FILE *)l.files[f].file);
    tsf__wlist_free(&l);
    if (j.tok) TSF_FREE(j.tok, l.ctx);
    if (names) TSF_FREE(names, l.ctx);
    TSF_FREE(txt, l.ctx);
    return st;
}

TSFDEF tsf_status tsf_model_load_file(tsf_model *m, const char *path, const tsf_config *cfg, int B,
                                      tsf_error *err) {
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m); /* first, as in tsf_model_init: tsf_model_free(m) is then safe */
    if (!path) return TSF_ERR_ARG;
    if (err) err->msg[0] = 0;
    return tsf__load_file(m, path, cfg, NULL, 0, B, NULL, err);
}

TSFDEF tsf_status tsf_model_load(tsf_model *m, const char *path, int B, tsf_error *err) {
    static const char *const weights[4] = {"model.safetensors", "pytorch_model.bin",
                                           "model.safetensors.index.json",
                                           "pytorch_model.bin.index.json"};
    char sub[4200], *txt = NULL, *pre = NULL;
    const char *labels;
    size_t len = 0, plen;
    tsf_config cfg;
    tsf_status st;
    int k;
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m); /* first, as in tsf_model_init: tsf_model_free(m) is then safe */
    if (!path) return TSF_ERR_ARG;
    if (err) err->msg[0] = 0;
    if (strlen(path) > 4000)
        return tsf__seterr(err, "a path longer than 4000 bytes", "", ""), TSF_ERR_ARG;
    snprintf(sub, sizeof sub, "%s/config.json", path);
    if (!tsf__exists(sub)) {                     /* not a model folder: a weight file */
        snprintf(sub, sizeof sub, "%s/.", path); /* exists only if path is a folder */
        if (tsf__exists(sub))
            return tsf__seterr(err, path,
                               ": a folder without config.json (a Hugging Face model "
                               "folder holds config.json and model.safetensors or "
                               "pytorch_model.bin)",
                               ""),
                   TSF_ERR_IO;
        return tsf__load_file(m, path, NULL, NULL, 0, B, NULL, err);
    }
    memset(&cfg, 0, sizeof cfg);
    st = tsf__json_file_apply(&cfg, sub, 0, &txt, &len, err);
    snprintf(sub, sizeof sub, "%s/preprocessor_config.json", path);
    if (st == TSF_OK && tsf__exists(sub)) {
        st = tsf__json_file_apply(&cfg, sub, 1, &pre, &plen, err);
        if (pre) TSF_FREE(pre, NULL);
    }
    if (st == TSF_OK && (st = tsf_config_resolve(&cfg)) != TSF_OK) {
        snprintf(sub, sizeof sub, "%s/config.json", path);
        tsf__seterr(err, sub, ": invalid model configuration", "");
    }
    labels = st == TSF_OK && strstr(txt, "\"id2label\"") ? txt : NULL; /* class names */
    for (k = 0; k < 4 && st == TSF_OK; k++) {
        snprintf(sub, sizeof sub, "%s/%s", path, weights[k]);
        if (!tsf__exists(sub)) continue;
        if (k < 2)
            st = tsf__load_file(m, sub, &cfg, labels, len, B, NULL, err);
        else
            st = tsf__load_sharded(m, path, sub, &cfg, labels, len, B, err);
        break;
    }
    if (k == 4 && st == TSF_OK) {
        tsf__seterr(err, path,
                    ": no weights in the folder (model.safetensors, pytorch_model.bin, "
                    "or a sharded index *.index.json)",
                    "");
        st = TSF_ERR_IO;
    }
    if (txt) TSF_FREE(txt, NULL);
    return st;
}

/* ---- a weight file's tensors, by name ------------------------------------------------------ */
typedef struct tsf__weights {
    tsf__wlist l;
    char *config;
} tsf__weights;

TSFDEF void tsf_weights_close(tsf_weights *w) {
    tsf__weights *x;
    if (!w || !w->impl) return;
    x = (tsf__weights *)w->impl;
    if (x->l.nfiles) fclose((FILE *)x->l.files[0].file);
    if (x->config) TSF_FREE(x->config, x->l.ctx);
    tsf__wlist_free(&x->l);
    TSF_FREE(x, x->l.ctx);
    memset(w, 0, sizeof *w);
}

TSFDEF tsf_status tsf_weights_open(tsf_weights *w, const char *path, void *alloc_ctx,
                                   tsf_error *err) {
    tsf__weights *x;
    tsf_status st;
    unsigned char head[2];
    if (!w || !path) return TSF_ERR_ARG;
    memset(w, 0, sizeof *w);
    if (err) err->msg[0] = 0;
    if (!(x = (tsf__weights *)TSF_MALLOC(sizeof *x, alloc_ctx))) return TSF_ERR_ALLOC;
    memset(x, 0, sizeof *x);
    x->l.ctx = alloc_ctx, w->impl = x;
    if ((st = tsf__source_open(&x->l.files[0], path, err)) != TSF_OK) {
        tsf_weights_close(w);
        return st;
    }
    x->l.nfiles = 1;
    if (tsf__source_read(&x->l.files[0], 0, head, 2) && memcmp(head, "PK", 2) == 0) {
        st = tsf__pt_list(&x->l, err);
    } else {
        char *hdr = NULL;
        unsigned long long n = 0;
        tsf__json j;
        int t;
        memset(&j, 0, sizeof j);
        if ((st = tsf__st_header(&x->l.files[0], &hdr, &n, &j, alloc_ctx, err)) == TSF_OK)
            st = tsf__st_list(&x->l, &j, 0, 8 + n, err);
        t = st == TSF_OK ? tsf__json_get(&j, tsf__json_get(&j, 0, "__metadata__"), "config") : -1;
        if (t >= 0) { /* the config: a JSON string */
            size_t len = (size_t)(j.tok[t].end - j.tok[t].start) + 1;
            if (!(x->config = (char *)TSF_MALLOC(len, alloc_ctx)))
                st = TSF_ERR_ALLOC;
            else if (!tsf__json_str(&j, t, x->config, len))
                x->config[0] = 0;
        }
        if (j.tok) TSF_FREE(j.tok, alloc_ctx);
        if (hdr) TSF_FREE(hdr, alloc_ctx);
    }
    if (st != TSF_OK) {
        tsf__err_file(err, path);
        tsf_weights_close(w);
        return st;
    }
    w->count = x->l.n, w->config = x->config;
    return TSF_OK;
}

TSFDEF tsf_status tsf_weights_info(const tsf_weights *w, int i, const char **name, int *ndim,
                                   long long shape[8]) {
    const tsf__wtensor *e;
    int d;
    if (!w || !w->impl || i < 0 || i >= w->count) return TSF_ERR_ARG;
    e = &((const tsf__weights *)w->impl)->l.t[i];
    if (name) *name = ((const tsf__weights *)w->impl)->l.text + e->name;
    *ndim = 0;
    if (e->why || e->dtype == TSF__DT_NONE) return TSF_ERR_FORMAT;
    *ndim = e->ndim;
    for (d = 0; d < e->ndim; d++) shape[d] = e->shape[d];
    return TSF_OK;
}

TSFDEF tsf_status tsf_weights_read(const tsf_weights *w, int i, float *dst, tsf_error *err) {
    const tsf__weights *x;
    const tsf__wtensor *e;
    size_t numel = 1;
    int d;
    if (!w || !w->impl || i < 0 || i >= w->count || !dst) return TSF_ERR_ARG;
    x = (const tsf__weights *)w->impl;
    e = &x->l.t[i];
    if (e->why || e->dtype == TSF__DT_NONE)
        return tsf__seterr(err, x->l.text + e->name, ": ",
                           e->why ? x->l.text + e->why : "not a float tensor"),
               TSF_ERR_FORMAT;
    for (d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
    if (!tsf__wlist_read(&x->l, e, dst, numel))
        return tsf__seterr(err, "cannot read the data of ", x->l.text + e->name, ""), TSF_ERR_IO;
    return TSF_OK;
}

/* A growing text buffer for the JSON header. */
typedef struct tsf__buf {
    char *p;
    size_t len, cap;
    int failed;
    void *ctx;
} tsf__buf;

static void tsf__put(tsf__buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = (char *)TSF_MALLOC(cap, b->ctx);
        if (!p) {
            b->failed = 1;
            return;
        }
        if (b->p) memcpy(p, b->p, b->len), TSF_FREE(b->p, b->ctx);
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void tsf__puts(tsf__buf *b, const char *s) { tsf__put(b, s, strlen(s)); }

/* s as a JSON string literal (quotes and escapes). */
static void tsf__put_json_str(tsf__buf *b, const char *s) {
    tsf__puts(b, "\"");
    for (; *s; s++) {
        char e[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            e[0] = '\\', e[1] = (char)c, e[2] = 0;
        else if (c < 0x20)
            snprintf(e, sizeof e, "\\u%04x", c);
        else
            e[0] = (char)c, e[1] = 0;
        tsf__puts(b, e);
    }
    tsf__puts(b, "\"");
}

/* One tensor of a file being written. */
typedef struct tsf__out_tensor {
    char name[128];
    const float *data;
    int ndim;
    long long shape[4];
} tsf__out_tensor;

static int tsf__out_cmp(const void *a, const void *b) {
    return strcmp(((const tsf__out_tensor *)a)->name, ((const tsf__out_tensor *)b)->name);
}

/* Write the model (and, for a checkpoint, its SGD momentum and the JSON train_state) as F32
   safetensors: to path.tmp, flushed to disk, then renamed over path, so a crash never
   leaves half a file and never loses the previous one. */
static tsf_status tsf__save(const tsf_model *m, const char *path, const char *train_state,
                            tsf_error *err) {
    const tsf_config *c = &m->cfg;
    int nt = tsf_model_num_tensors(m), n = train_state ? 2 * nt : nt, i, k;
    char tmp[4200], num[96];
    unsigned long long off = 0;
    tsf__out_tensor *ts;
    tsf__buf hdr, meta;
    FILE *f = NULL;
    tsf_status st = TSF_OK;
    unsigned char len8[8];
    memset(&hdr, 0, sizeof hdr), memset(&meta, 0, sizeof meta);
    hdr.ctx = meta.ctx = c->alloc_ctx;
    if (!path || strlen(path) > 4000 || (train_state && !m->momentum_memory)) return TSF_ERR_ARG;
    if (err) err->msg[0] = 0;
    if (!(ts = (tsf__out_tensor *)TSF_MALLOC((size_t)n * sizeof *ts, c->alloc_ctx)))
        return TSF_ERR_ALLOC;
    for (i = 0; i < nt; i++) { /* the parameters, then their momentum buffers */
        float *data;
        tsf_model_tensor(m, i, ts[i].name, &ts[i].ndim, ts[i].shape, &data);
        ts[i].data = data;
        if (i + nt < n) {
            ts[i + nt] = ts[i];
            memcpy(ts[i + nt].name, "optimizer.momentum.", 19); /* names are < 96 bytes */
            memcpy(ts[i + nt].name + 19, ts[i].name, strlen(ts[i].name) + 1);
            ts[i + nt].data = m->momentum_memory + (data - m->param_memory);
        }
    }
    qsort(ts, (size_t)n, sizeof *ts, tsf__out_cmp); /* name order, as the golden files are */
    tsf__puts(&hdr, "{");
    for (i = 0; i < n; i++) {
        unsigned long long bytes = 4;
        tsf__puts(&hdr, i ? "," : "");
        tsf__put_json_str(&hdr, ts[i].name);
        tsf__puts(&hdr, ":{\"dtype\":\"F32\",\"shape\":[");
        for (k = 0; k < ts[i].ndim; k++) {
            snprintf(num, sizeof num, "%s%lld", k ? "," : "", ts[i].shape[k]);
            tsf__puts(&hdr, num);
            bytes *= (unsigned long long)ts[i].shape[k];
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", off, off + bytes);
        tsf__puts(&hdr, num);
        off += bytes;
    }
    /* __metadata__: the config (the original code's keys plus the preprocessing), class names and,
       in a checkpoint, the training state */
    snprintf(tmp, sizeof tmp,
             "{\"img_size\": %d, \"patch_size\": %d, \"in_chans\": %d, \"num_frames\": %d, "
             "\"embed_dim\": %d, \"depth\": %d, \"num_heads\": %d, \"mlp_ratio\": %.9g, "
             "\"num_classes\": %d, \"attention_type\": \"%s\", \"ln_eps\": %.9g, "
             "\"qkv_bias\": %s, \"mean\": [%.9g, %.9g, %.9g], \"std\": [%.9g, %.9g, %.9g], "
             "\"channel_order\": \"%s\", \"short_side\": %d, \"crop_size\": %d%s%s%s}",
             c->image_size, c->patch_size, c->channels, c->frames, c->dim, c->depth, c->heads,
             (double)c->mlp_ratio, c->classes, tsf_attention_name(c->attention), (double)c->ln_eps,
             c->no_qkv_bias ? "false" : "true", (double)c->mean[0], (double)c->mean[1],
             (double)c->mean[2], (double)c->std[0], (double)c->std[1], (double)c->std[2],
             c->bgr ? "BGR" : "RGB", c->short_side, c->crop_size,
             c->pos_embed ? ", \"pos_embed\": \"" : "", /* written only when not space_time */
             c->pos_embed ? tsf_pos_embed_name(c->pos_embed) : "", c->pos_embed ? "\"" : "");
    tsf__puts(&hdr, ",\"__metadata__\":{\"format\":\"pt\",\"config\":");
    tsf__put_json_str(&hdr, tmp);
    if (m->labels) {
        tsf__puts(&meta, "[");
        for (k = 0; k < c->classes; k++) {
            tsf__puts(&meta, k ? "," : "");
            tsf__put_json_str(&meta, tsf_model_label(m, k));
        }
        tsf__puts(&meta, "]");
        tsf__puts(&hdr, ",\"labels\":");
        tsf__put_json_str(&hdr, meta.failed ? "" : meta.p);
    }
    if (train_state) {
        tsf__puts(&hdr, ",\"train_state\":");
        tsf__put_json_str(&hdr, train_state);
    }
    tsf__puts(&hdr, "}}");
    while (!hdr.failed && hdr.len % 8) tsf__puts(&hdr, " "); /* data starts 8-byte aligned */
    if (hdr.failed || meta.failed) {
        st = TSF_ERR_ALLOC;
        goto done;
    }
#if defined(__unix__) || defined(__APPLE__)
    {
        struct stat sb;
        if (!tsf__replaceable(path)) {
            tsf__seterr(err, path,
                        ": exists and is not a regular file (a folder, FIFO or device): "
                        "not replaced",
                        "");
            st = TSF_ERR_IO;
            goto done;
        }
        snprintf(tmp, sizeof tmp, "%s.tmp", path); /* a stale temporary file, or a link planted */
        if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode)) remove(tmp); /* there (even dangling) */
    }
#endif
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) {
        tsf__seterr(err, tmp, ": cannot create", "");
        st = TSF_ERR_IO;
        goto done;
    }
    for (k = 0; k < 8; k++) len8[k] = (unsigned char)((unsigned long long)hdr.len >> (8 * k));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(hdr.p, 1, hdr.len, f) != hdr.len) st = TSF_ERR_IO;
    for (i = 0; i < n && st == TSF_OK; i++) {
        size_t numel = 1;
        for (k = 0; k < ts[i].ndim; k++) numel *= (size_t)ts[i].shape[k];
        if (fwrite(ts[i].data, sizeof(float), numel, f) != numel) st = TSF_ERR_IO;
    }
    if (fclose(f) != 0) st = TSF_ERR_IO;
#if defined(__unix__) || defined(__APPLE__)
    if (st == TSF_OK) { /* the bytes reach the disk before the rename makes them the file */
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) st = TSF_ERR_IO;
        if (fd >= 0) close(fd);
    }
#endif
    if (st == TSF_OK) {
#ifdef _WIN32
        remove(path);
#endif
        if (rename(tmp, path) != 0) st = TSF_ERR_IO;
    }
#if defined(__unix__) || defined(__APPLE__)
    if (st == TSF_OK) { /* and the rename itself reaches the disk: sync the folder */
        const char *slash = strrchr(path, '/');
        int fd;
        if (slash && slash != path)
            snprintf(tmp, sizeof tmp, "%.*s", (int)(slash - path), path);
        else
            snprintf(tmp, sizeof tmp, "%s", slash ? "/" : ".");
        if ((fd = open(tmp, O_RDONLY)) >= 0) {
            (void)fsync(fd); /* some filesystems refuse to sync a folder; the file is safe */
            close(fd);
        }
    }
#endif
    if (st != TSF_OK) {
        remove(tmp);
        tsf__seterr(err, path, ": write failed (the previous file, if any, is untouched)", "");
    }
done:
    TSF_FREE(ts, c->alloc_ctx);
    if (hdr.p) TSF_FREE(hdr.p, c->alloc_ctx);
    if (meta.p) TSF_FREE(meta.p, c->alloc_ctx);
    return st;
}

TSFDEF tsf_status tsf_model_save(const tsf_model *m, const char *path, tsf_error *err) {
    return tsf__save(m, path, NULL, err);
}

TSFDEF tsf_status tsf_checkpoint_load(tsf_model *m, tsf_train_state *ts, const char *path, int B,
                                      tsf_error *err) {
    if (!m || !ts || !path) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m);
    memset(ts, 0, sizeof *ts);
    if (err) err->msg[0] = 0;
    return tsf__load_file(m, path, NULL, NULL, 0, B, ts, err);
}

TSFDEF tsf_status tsf_checkpoint_save(const tsf_model *m, const tsf_train_state *ts,
                                      const char *path, tsf_error *err) {
    char state[1024];
    if (!m || !ts) return TSF_ERR_ARG;
    snprintf(state, sizeof state,
             "{\"sgd_steps\": %lld, \"step\": %lld, \"epoch\": %lld, \"epoch_step\": %lld, "
             "\"model_rng\": [%u, %u, %u, %u], \"data_rng\": [%u, %u, %u, %u], "
             "\"drop_path\": %.9g, \"label_smoothing\": %.9g, \"dropout\": %.9g}",
             m->sgd_steps, ts->step, ts->epoch, ts->epoch_step, m->rng.s[0], m->rng.s[1],
             m->rng.s[2], m->rng.s[3], ts->data_rng.s[0], ts->data_rng.s[1], ts->data_rng.s[2],
             ts->data_rng.s[3], (double)m->drop_path, (double)m->label_smoothing,
             (double)m->dropout);
    return tsf__save(m, path, state, err);
}
#endif /* TSF_NO_STDIO */

/* ==========================================================================================
   CLIPS AND DATASETS
   ========================================================================================== */

/* err->msg = fmt with "%d" replaced by a, then b, and "%s" by s[0..sn) (sn = (size_t)-1:
   up to the NUL). Truncated to fit. No stdio, so it works under TSF_NO_STDIO. */
static void tsf__clip_msg(tsf_error *err, const char *fmt, long long a, long long b, const char *s,
                          size_t sn) {
    size_t n = 0, cap = sizeof err->msg - 1, i;
    int k = 0;
    if (!err) return;
    for (; *fmt && n < cap; fmt++) {
        if (fmt[0] == '%' && fmt[1] == 'd') {
            long long v = k++ ? b : a;
            unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            char d[24];
            int m = 0;
            do d[m++] = (char)('0' + (int)(u % 10)), u /= 10;
            while (u);
            if (v < 0 && n < cap) err->msg[n++] = '-';
            while (m > 0 && n < cap) err->msg[n++] = d[--m];
            fmt++;
        } else if (fmt[0] == '%' && fmt[1] == 's') {
            for (i = 0; s && i < sn && s[i] && n < cap; i++) err->msg[n++] = s[i];
            fmt++;
        } else {
            err->msg[n++] = *fmt;
        }
    }
    err->msg[n] = 0;
}

static unsigned int tsf__clip_get32(const unsigned char *p) {
    return (unsigned int)p[0] | (unsigned int)p[1] << 8 | (unsigned int)p[2] << 16 |
           (unsigned int)p[3] << 24;
}

static void tsf__clip_put32(unsigned char *p, unsigned int v) {
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

/* An integer uniform in [0, m), m >= 1, from 32 random bits (multiply-shift). */
static int tsf__clip_below(tsf_rng *rng, int m) {
    return (int)(((unsigned long long)tsf_rng_u32(rng) * (unsigned long long)m) >> 32);
}

/* ---- the header ------------------------------------------------------------------------- */
TSFDEF tsf_status tsf_clip_header_check(const tsf_clip_header *h) {
    unsigned long long data;
    if (!h) return TSF_ERR_ARG;
    if (h->T < 1 || h->T > TSF_CLIP_MAX_FRAMES || h->H < 1 || h->H > TSF_CLIP_MAX_SIDE ||
        h->W < 1 || h->W > TSF_CLIP_MAX_SIDE || h->C < 1 || h->C > TSF_CLIP_MAX_CHANNELS ||
        !(h->fps >= 0.0f && h->fps <= TSF_CLIP_MAX_FPS) || h->label < -1)
        return TSF_ERR_FORMAT;
    /* each factor is within its limit, so this product is below 2^50: no overflow */
    data = (unsigned long long)h->T * (unsigned long long)h->H * (unsigned long long)h->W *
           (unsigned long long)h->C;
    if (data > TSF_CLIP_MAX_BYTES - TSF_CLIP_HEADER_BYTES) return TSF_ERR_OVERFLOW;
    return TSF_OK;
}

TSFDEF size_t tsf_clip_frame_bytes(const tsf_clip_header *h) {
    if (tsf_clip_header_check(h) != TSF_OK) return 0;
    return (size_t)h->H * (size_t)h->W * (size_t)h->C; /* <= 2^30: fits any size_t */
}

TSFDEF unsigned long long tsf_clip_file_bytes(const tsf_clip_header *h) {
    if (tsf_clip_header_check(h) != TSF_OK) return 0;
    return TSF_CLIP_HEADER_BYTES + (unsigned long long)h->T * tsf_clip_frame_bytes(h);
}

TSFDEF tsf_status tsf_clip_header_decode(tsf_clip_header *h, const void *bytes, size_t n,
                                         tsf_error *err) {
    const unsigned char *p = (const unsigned char *)bytes;
    static const char *const names[4] = {"T", "H", "W", "C"};
    static const unsigned int limits[4] = {TSF_CLIP_MAX_FRAMES, TSF_CLIP_MAX_SIDE,
                                           TSF_CLIP_MAX_SIDE, TSF_CLIP_MAX_CHANNELS};
    tsf_clip_header r;
    unsigned int v[4], bits, lab;
    int i;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!h) return TSF_ERR_ARG;
    memset(h, 0, sizeof *h);
    if (!bytes) return TSF_ERR_ARG;
    if (n < TSF_CLIP_HEADER_BYTES)
        return tsf__clip_msg(err, "%d bytes: shorter than the %d-byte header", (long long)n,
                             TSF_CLIP_HEADER_BYTES, NULL, 0),
               TSF_ERR_FORMAT;
    if (memcmp(p, TSF_CLIP_MAGIC, 8) != 0)
        return tsf__clip_msg(err, "not a clip file (no TSF_CLIP magic)", 0, 0, NULL, 0),
               TSF_ERR_FORMAT;
    if (tsf__clip_get32(p + 8) != TSF_CLIP_VERSION)
        return tsf__clip_msg(err, "clip format version %d (this library reads %d)",
                             tsf__clip_get32(p + 8), TSF_CLIP_VERSION, NULL, 0),
               TSF_ERR_FORMAT;
    if (tsf__clip_get32(p + 12) != TSF_CLIP_HEADER_BYTES)
        return tsf__clip_msg(err, "header size %d (version 1 has %d)", tsf__clip_get32(p + 12),
                             TSF_CLIP_HEADER_BYTES, NULL, 0),
               TSF_ERR_FORMAT;
    for (i = 0; i < 4; i++) {
        v[i] = tsf__clip_get32(p + 16 + 4 * i);
        if (v[i] < 1 || v[i] > limits[i])
            return tsf__clip_msg(err, "%s = %d is outside 1 .. %d", v[i], limits[i], names[i],
                                 (size_t)-1),
                   TSF_ERR_FORMAT;
    }
    bits = tsf__clip_get32(p + 32);
    memcpy(&r.fps, &bits, 4); /* IEEE binary32, stored with the integers' byte order */
    if (!(r.fps >= 0.0f && r.fps <= TSF_CLIP_MAX_FPS))
        return tsf__clip_msg(err, "fps is negative, not a number or absurd", 0, 0, NULL, 0),
               TSF_ERR_FORMAT;
    lab = tsf__clip_get32(p + 36);
    if (lab > 0x7FFFFFFFu && lab != 0xFFFFFFFFu)
        return tsf__clip_msg(err, "label is below -1", 0, 0, NULL, 0), TSF_ERR_FORMAT;
    for (i = 40; i < TSF_CLIP_HEADER_BYTES; i++)
        if (p[i])
            return tsf__clip_msg(err, "reserved header byte %d is not zero", i, 0, NULL, 0),
                   TSF_ERR_FORMAT;
    r.T = (int)v[0], r.H = (int)v[1], r.W = (int)v[2], r.C = (int)v[3];
    r.label = lab == 0xFFFFFFFFu ? -1 : (int)lab;
    st = tsf_clip_header_check(&r);
    if (st != TSF_OK)
        return tsf__clip_msg(err, "%d frames of %d bytes: larger than the 1 TiB limit", r.T,
                             (long long)r.H * r.W * r.C, NULL, 0),
               st;
    *h = r;
    return TSF_OK;
}

TSFDEF tsf_status tsf_clip_header_encode(unsigned char *out, const tsf_clip_header *h) {
    tsf_status st = tsf_clip_header_check(h);
    unsigned int bits;
    if (st == TSF_ERR_FORMAT) st = TSF_ERR_ARG; /* the caller's values, not a file's */
    if (st != TSF_OK) return st;
    if (!out) return TSF_ERR_ARG;
    memset(out, 0, TSF_CLIP_HEADER_BYTES);
    memcpy(out, TSF_CLIP_MAGIC, 8);
    tsf__clip_put32(out + 8, TSF_CLIP_VERSION);
    tsf__clip_put32(out + 12, TSF_CLIP_HEADER_BYTES);
    tsf__clip_put32(out + 16, (unsigned int)h->T);
    tsf__clip_put32(out + 20, (unsigned int)h->H);
    tsf__clip_put32(out + 24, (unsigned int)h->W);
    tsf__clip_put32(out + 28, (unsigned int)h->C);
    memcpy(&bits, &h->fps, 4);
    tsf__clip_put32(out + 32, bits);
    tsf__clip_put32(out + 36, h->label < 0 ? 0xFFFFFFFFu : (unsigned int)h->label);
    return TSF_OK;
}

/* ---- clips in memory and in files -------------------------------------------------------- */
TSFDEF tsf_status tsf_clip_view(tsf_clip *clip, const void *bytes, size_t n, tsf_error *err) {
    tsf_status st;
    unsigned long long want;
    if (err) err->msg[0] = 0;
    if (!clip) return TSF_ERR_ARG;
    memset(clip, 0, sizeof *clip);
    st = tsf_clip_header_decode(&clip->h, bytes, n, err);
    if (st != TSF_OK) return st;
    want = tsf_clip_file_bytes(&clip->h);
    if ((unsigned long long)n != want) {
        tsf__clip_msg(err, "%d bytes, but the header describes %d", (long long)n, (long long)want,
                      NULL, 0);
        memset(clip, 0, sizeof *clip);
        return TSF_ERR_FORMAT;
    }
    clip->pixels = (const unsigned char *)bytes + TSF_CLIP_HEADER_BYTES;
    return TSF_OK;
}

#ifndef TSF_NO_STDIO
/* Seek to byte off from the start, in steps that fit a long (32 bits on Windows). */
static tsf_status tsf__clip_seek(FILE *f, unsigned long long off) {
    const long step = 1L << 30;
    if (fseek(f, 0L, SEEK_SET) != 0) return TSF_ERR_IO;
    while (off > 0) {
        long s = off > (unsigned long long)step ? step : (long)off;
        if (fseek(f, s, SEEK_CUR) != 0) return TSF_ERR_IO;
        off -= (unsigned long long)s;
    }
    return TSF_OK;
}
#endif

TSFDEF tsf_status tsf_clip_read_frames(tsf_clip *clip, int t0, int n, unsigned char *dst) {
    size_t fb;
    if (!clip || !dst || t0 < 0 || n < 0 || t0 > clip->h.T || n > clip->h.T - t0)
        return TSF_ERR_ARG;
    fb = tsf_clip_frame_bytes(&clip->h);
    if (fb == 0 || (!clip->pixels && !clip->file)) return TSF_ERR_ARG;
    if ((size_t)n > ((size_t)-1) / fb) return TSF_ERR_OVERFLOW;
    if (clip->pixels) { /* a clip in memory holds T*fb bytes, so these fit a size_t */
        memcpy(dst, clip->pixels + (size_t)t0 * fb, (size_t)n * fb);
        return TSF_OK;
    }
#ifndef TSF_NO_STDIO
    {
        FILE *f = (FILE *)clip->file;
        tsf_status st = tsf__clip_seek(f, TSF_CLIP_HEADER_BYTES + (unsigned long long)t0 * fb);
        if (st != TSF_OK) return st;
        if (n > 0 && fread(dst, fb, (size_t)n, f) != (size_t)n) return TSF_ERR_IO;
        return TSF_OK;
    }
#else
    return TSF_ERR_ARG;
#endif
}

TSFDEF void tsf_clip_close(tsf_clip *clip) {
    if (!clip) return;
#ifndef TSF_NO_STDIO
    if (clip->file) fclose((FILE *)clip->file);
#endif
    if (clip->owned) TSF_FREE(clip->owned, clip->alloc_ctx);
    memset(clip, 0, sizeof *clip);
}

#ifndef TSF_NO_STDIO
TSFDEF tsf_status tsf_clip_open(tsf_clip *clip, const char *path, void *alloc_ctx, tsf_error *err) {
    unsigned char hdr[TSF_CLIP_HEADER_BYTES];
    unsigned long long size;
    tsf_status st;
    size_t got;
    const char *why = "";
    FILE *f;
    if (err) err->msg[0] = 0;
    if (!clip) return TSF_ERR_ARG;
    memset(clip, 0, sizeof *clip);
    clip->alloc_ctx = alloc_ctx;
    if (!path) return TSF_ERR_ARG;
    if (!(f = tsf__fopen_regular(path, &why)))
        return tsf__clip_msg(err, "cannot open the file: %s", 0, 0, why, strlen(why)), TSF_ERR_IO;
    got = fread(hdr, 1, sizeof hdr, f);
    if (got < sizeof hdr && ferror(f)) {
        tsf__clip_msg(err, "cannot read the file", 0, 0, NULL, 0);
        st = TSF_ERR_IO;
    } else {
        st = tsf_clip_header_decode(&clip->h, hdr, got, err);
    }
    if (st == TSF_OK) { /* exact size: the last byte exists and nothing follows it */
        size = tsf_clip_file_bytes(&clip->h);
        st = tsf__clip_seek(f, size - 1);
        if (st == TSF_OK && fgetc(f) == EOF) {
            st = ferror(f) ? TSF_ERR_IO : TSF_ERR_FORMAT;
            if (st == TSF_ERR_FORMAT)
                tsf__clip_msg(err, "truncated: the header describes %d bytes", (long long)size, 0,
                              NULL, 0);
        } else if (st == TSF_OK && fgetc(f) != EOF) {
            st = TSF_ERR_FORMAT;
            tsf__clip_msg(err, "bytes after the %d the header describes", (long long)size, 0, NULL,
                          0);
        }
        if (st == TSF_ERR_IO && err && !err->msg[0])
            tsf__clip_msg(err, "cannot read the file", 0, 0, NULL, 0);
    }
    if (st != TSF_OK) {
        fclose(f);
        memset(clip, 0, sizeof *clip);
        return st;
    }
    clip->file = f;
    return TSF_OK;
}

TSFDEF tsf_status tsf_clip_read_header(tsf_clip_header *h, const char *path, tsf_error *err) {
    tsf_clip clip;
    tsf_status st;
    if (!h) return TSF_ERR_ARG;
    memset(h, 0, sizeof *h);
    st = tsf_clip_open(&clip, path, NULL, err);
    if (st == TSF_OK) *h = clip.h;
    tsf_clip_close(&clip);
    return st;
}

TSFDEF tsf_status tsf_clip_load(tsf_clip *clip, const char *path, void *alloc_ctx, tsf_error *err) {
    unsigned long long data;
    unsigned char *mem;
    tsf_status st = tsf_clip_open(clip, path, alloc_ctx, err);
    if (st != TSF_OK) return st;
    data = (unsigned long long)tsf_clip_frame_bytes(&clip->h) * clip->h.T; /* open checked it */
    if (data > (unsigned long long)((size_t)-1)) {
        tsf__clip_msg(err, "%d bytes of frames do not fit this machine's memory", (long long)data,
                      0, NULL, 0);
        tsf_clip_close(clip);
        return TSF_ERR_OVERFLOW;
    }
    mem = (unsigned char *)TSF_MALLOC((size_t)data, alloc_ctx);
    if (!mem) {
        tsf_clip_close(clip);
        return TSF_ERR_ALLOC;
    }
    st = tsf_clip_read_frames(clip, 0, clip->h.T, mem);
    fclose((FILE *)clip->file);
    clip->file = NULL;
    clip->owned = mem;
    clip->pixels = mem;
    if (st != TSF_OK) {
        tsf__clip_msg(err, "cannot read the file", 0, 0, NULL, 0);
        tsf_clip_close(clip);
    }
    return st;
}

TSFDEF tsf_status tsf_clip_save(const char *path, const tsf_clip_header *h,
                                const unsigned char *pixels) {
    unsigned char hdr[TSF_CLIP_HEADER_BYTES];
    tsf_status st = tsf_clip_header_encode(hdr, h);
    size_t fb;
    int t, ok;
    FILE *f;
    if (st != TSF_OK) return st;
    if (!path || !pixels) return TSF_ERR_ARG;
    fb = tsf_clip_frame_bytes(h);
    if (!tsf__replaceable(path)) return TSF_ERR_IO; /* a FIFO would block, a device be written */
    f = fopen(path, "wb");
    if (!f) return TSF_ERR_IO;
    ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    for (t = 0; ok && t < h->T; t++) ok = fwrite(pixels + (size_t)t * fb, 1, fb, f) == fb;
    if (fclose(f) != 0) ok = 0;
    if (!ok) remove(path);
    return ok ? TSF_OK : TSF_ERR_IO;
}
#endif /* TSF_NO_STDIO */

/* ---- sampling ------------------------------------------------------------------------------ */
TSFDEF tsf_status tsf_sample_opts_resolve(tsf_sample_opts *o) {
    int c;
    if (!o) return TSF_ERR_ARG;
    if (!o->frames) o->frames = 8;
    if (!o->size) o->size = 224;
    if (!o->stride) o->stride = 32;
    if (!o->test_clips) o->test_clips = 1;
    if (!o->test_crops) o->test_crops = 3;
    if (o->std[0] == 0.0f && o->std[1] == 0.0f && o->std[2] == 0.0f)
        for (c = 0; c < 3; c++) o->mean[c] = 0.45f, o->std[c] = 0.225f;
    if (o->frames < 1 || o->frames > TSF_CLIP_MAX_FRAMES || o->size < 1 ||
        o->size > TSF_CLIP_MAX_SIDE || o->stride < 1 || o->stride > TSF_CLIP_MAX_FRAMES ||
        (o->sampling != TSF_SAMPLE_DENSE && o->sampling != TSF_SAMPLE_SEGMENT) ||
        !(o->target_fps >= 0.0f && o->target_fps <= TSF_CLIP_MAX_FPS) || o->test_clips < 1 ||
        o->test_clips > 1024 || (o->test_crops != 1 && o->test_crops != 3) ||
        (o->bgr != 0 && o->bgr != 1))
        return TSF_ERR_CONFIG;
    /* the paper's 256 .. 320 for 224, scaled with S (S <= 16384: no overflow) */
    if (!o->scale_min) o->scale_min = (o->size * 256 + 112) / 224;
    if (!o->scale_max) o->scale_max = (o->size * 320 + 112) / 224;
    if (!o->short_side) o->short_side = o->size;
    if (o->short_side < o->size || o->short_side > TSF_CLIP_MAX_SIDE) return TSF_ERR_CONFIG;
    if (o->scale_min < o->size || o->scale_max < o->scale_min || o->scale_max > TSF_CLIP_MAX_SIDE)
        return TSF_ERR_CONFIG;
    for (c = 0; c < 3; c++)
        if (!(o->std[c] > 0.0f && o->std[c] < 1e30f && o->mean[c] > -1e30f && o->mean[c] < 1e30f))
            return TSF_ERR_CONFIG;
    return TSF_OK;
}

TSFDEF int tsf_sample_num_views(const tsf_sample_opts *o) {
    tsf_sample_opts r;
    if (!o) return 0;
    r = *o;
    if (tsf_sample_opts_resolve(&r) != TSF_OK) return 0;
    return (r.sampling == TSF_SAMPLE_SEGMENT ? 1 : r.test_clips) * r.test_crops;
}

/* Resolve a copy of the options and check the view and the generator. */
static tsf_status tsf__clip_prepare(tsf_sample_opts *r, const tsf_sample_opts *o, tsf_rng *rng,
                                    int view) {
    tsf_status st;
    if (!o) return TSF_ERR_ARG;
    *r = *o;
    st = tsf_sample_opts_resolve(r);
    if (st != TSF_OK) return st;
    if (view == TSF_VIEW_TRAIN) return rng ? TSF_OK : TSF_ERR_ARG;
    return view >= 0 && view < tsf_sample_num_views(r) ? TSF_OK : TSF_ERR_ARG;
}

TSFDEF tsf_status tsf_sample_frames(int *idx, int n, float fps, const tsf_sample_opts *opts,
                                    tsf_rng *rng, int view) {
    tsf_sample_opts o;
    tsf_status st = tsf__clip_prepare(&o, opts, rng, view);
    int T = o.frames, i;
    if (st != TSF_OK) return st;
    if (!idx || n < 1 || !(fps >= 0.0f && fps <= TSF_CLIP_MAX_FPS)) return TSF_ERR_ARG;
    if (o.sampling == TSF_SAMPLE_SEGMENT) { /* TimeSformer's ssv2.py */
        double seg = (double)(n - 1) / T;
        for (i = 0; i < T; i++) {
            int lo = (int)rint(seg * i), hi = (int)rint(seg * (i + 1));
            idx[i] =
                view == TSF_VIEW_TRAIN ? lo + tsf__clip_below(rng, hi - lo + 1) : (lo + hi) / 2;
        }
    } else { /* SlowFast's decoder.get_start_end_idx and temporal_sampling */
        double span = (double)o.stride * T, delta, start;
        float s, e, step, v;
        if (o.target_fps > 0.0f && fps > 0.0f)
            span = (double)o.stride * T / (double)o.target_fps * (double)fps;
        delta = n - span > 0.0 ? n - span : 0.0;
        if (view == TSF_VIEW_TRAIN)
            start = delta * (double)tsf_rng_uniform(rng);
        else
            start = delta * (view / o.test_crops) / o.test_clips;
        s = (float)start, e = (float)(start + span - 1.0);
        step = T > 1 ? (e - s) / (float)(T - 1) : 0.0f;
        for (i = 0; i < T; i++) { /* torch.linspace: from the start, then back from the end */
            v = T == 1 ? s : i < T / 2 ? s + step * (float)i : e - step * (float)(T - 1 - i);
            if (!(v >= 0.0f)) v = 0.0f;
            if (v > (float)(n - 1)) v = (float)(n - 1);
            idx[i] = (int)v;
        }
    }
    return TSF_OK;
}

TSFDEF tsf_status tsf_sample_crop(tsf_crop *crop, int H, int W, const tsf_sample_opts *opts,
                                  tsf_rng *rng, int view) {
    tsf_sample_opts o;
    tsf_status st = tsf__clip_prepare(&o, opts, rng, view);
    int S = o.size, s, train = view == TSF_VIEW_TRAIN;
    if (st != TSF_OK) return st;
    if (!crop || H < 1 || W < 1 || H > TSF_CLIP_MAX_SIDE || W > TSF_CLIP_MAX_SIDE)
        return TSF_ERR_ARG;
    memset(crop, 0, sizeof *crop);
    s = o.short_side; /* test views; training: SlowFast's random_short_side_scale_jitter */
    if (train) {
        double u = (double)tsf_rng_uniform(rng);
        if (o.inv_uniform) {
            double lo = 1.0 / o.scale_max, hi = 1.0 / o.scale_min;
            s = (int)rint(1.0 / (lo + (hi - lo) * u));
        } else {
            s = (int)rint(o.scale_min + (o.scale_max - o.scale_min) * u);
        }
        s = s < o.scale_min ? o.scale_min : s > o.scale_max ? o.scale_max : s;
    }
    if ((W <= H && W == s) || (H <= W && H == s))
        crop->height = H, crop->width = W;
    else if (W < H)
        crop->width = s, crop->height = (int)floor((double)H / W * s);
    else
        crop->height = s, crop->width = (int)floor((double)W / H * s);
    if (train) { /* random_crop, then horizontal_flip(0.5) */
        crop->y = tsf__clip_below(rng, crop->height - S + 1);
        crop->x = tsf__clip_below(rng, crop->width - S + 1);
        crop->flip = !o.no_flip && tsf_rng_uniform(rng) < 0.5f;
    } else { /* uniform_crop */
        int k = o.test_crops == 1 ? 1 : view % o.test_crops;
        crop->y = (crop->height - S + 1) / 2, crop->x = (crop->width - S + 1) / 2;
        if (crop->height > crop->width)
            crop->y = k == 0 ? 0 : k == 2 ? crop->height - S : crop->y;
        else
            crop->x = k == 0 ? 0 : k == 2 ? crop->width - S : crop->x;
    }
    return TSF_OK;
}

/* One axis of the bilinear map: resized coordinate d of a side `in` resized to `out`. */
static void tsf__clip_axis(int d, int in, int out, int *i0, int *i1, float *l1) {
    float scale = (float)in / (float)out, src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    *i0 = (int)src;
    if (*i0 > in - 1) *i0 = in - 1;
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *l1 = src - (float)*i0;
}

TSFDEF void tsf_frame_transform(float *out, size_t plane_stride, const unsigned char *frame, int H,
                                int W, int C, const tsf_crop *crop, int S, const float *mean,
                                const float *std, int bgr) {
    float scale[3], shift[3];
    int i, j, c;
    TSF_ASSERT(out && frame && crop && mean && std && C >= 1 && C <= 3 && (!bgr || C == 3));
    TSF_ASSERT(S >= 1 && crop->y >= 0 && crop->x >= 0 && crop->y + S <= crop->height &&
               crop->x + S <= crop->width && (C == 1 || plane_stride >= (size_t)S * S));
    for (c = 0; c < C; c++) /* the same arithmetic as tsf_model_forward_u8 */
        scale[c] = 1.0f / (255.0f * std[c]), shift[c] = mean[c] / std[c];
    for (i = 0; i < S; i++) {
        int y0, y1;
        float ly1, ly0;
        const unsigned char *r0, *r1;
        tsf__clip_axis(crop->y + i, H, crop->height, &y0, &y1, &ly1);
        ly0 = 1.0f - ly1;
        r0 = frame + (size_t)y0 * W * C, r1 = frame + (size_t)y1 * W * C;
        for (j = 0; j < S; j++) {
            int x0, x1;
            float lx1, lx0;
            tsf__clip_axis(crop->x + (crop->flip ? S - 1 - j : j), W, crop->width, &x0, &x1, &lx1);
            lx0 = 1.0f - lx1;
            for (c = 0; c < C; c++) {
                int k = bgr ? 2 - c : c;
                float p = ly0 * (lx0 * (float)r0[x0 * C + k] + lx1 * (float)r0[x1 * C + k]) +
                          ly1 * (lx0 * (float)r1[x0 * C + k] + lx1 * (float)r1[x1 * C + k]);
                out[c * plane_stride + (size_t)i * S + j] = p * scale[c] - shift[c];
            }
        }
    }
}

TSFDEF tsf_status tsf_clip_sample(float *x, tsf_clip *clip, const tsf_sample_opts *opts,
                                  tsf_rng *rng, int view) {
    tsf_sample_opts o;
    tsf_status st = tsf__clip_prepare(&o, opts, rng, view);
    tsf_crop crop;
    size_t fb, plane, bytes;
    int *idx, t, last = -1, T = o.frames, S = o.size, C;
    unsigned char *mem, *buf;
    if (st != TSF_OK) return st;
    if (!x || !clip || (!clip->pixels && !clip->file)) return TSF_ERR_ARG;
    C = clip->h.C;
    fb = tsf_clip_frame_bytes(&clip->h);
    if (fb == 0) return TSF_ERR_ARG;
    if (C > 3) return TSF_ERR_FORMAT; /* the loader normalises 1 to 3 channels */
    if (o.channels > 0 && C != o.channels) return TSF_ERR_FORMAT; /* not what x was made for */
    if (o.bgr && C != 3) return TSF_ERR_ARG;
    if ((double)C * T * S * S * sizeof(float) > (double)((size_t)-1)) return TSF_ERR_OVERFLOW;
    plane = (size_t)S * S;
    bytes = (size_t)T * sizeof(int) + (clip->pixels ? 0 : fb); /* < 2^31: T, fb are limited */
    mem = (unsigned char *)TSF_MALLOC(bytes, clip->alloc_ctx);
    if (!mem) return TSF_ERR_ALLOC;
    idx = (int *)(void *)mem, buf = mem + (size_t)T * sizeof(int);
    st = tsf_sample_frames(idx, clip->h.T, clip->h.fps, &o, rng, view);
    if (st == TSF_OK) st = tsf_sample_crop(&crop, clip->h.H, clip->h.W, &o, rng, view);
    for (t = 0; st == TSF_OK && t < T; t++) {
        const unsigned char *frame = buf;
        if (clip->pixels)
            frame = clip->pixels + (size_t)idx[t] * fb;
        else if (idx[t] != last)
            st = tsf_clip_read_frames(clip, idx[t], 1, buf);
        last = idx[t];
        if (st == TSF_OK)
            tsf_frame_transform(x + (size_t)t * plane, (size_t)T * plane, frame, clip->h.H,
                                clip->h.W, C, &crop, S, o.mean, o.std, o.bgr);
    }
    TSF_FREE(mem, clip->alloc_ctx);
    return st;
}

TSFDEF unsigned long long tsf_sample_seed(unsigned long long seed, long long epoch,
                                          long long index) {
    unsigned long long x = seed, a = tsf__splitmix64(&x);
    x = a ^ (unsigned long long)epoch;
    a = tsf__splitmix64(&x);
    x = a ^ (unsigned long long)index;
    return tsf__splitmix64(&x);
}

TSFDEF void tsf_shuffle(int *perm, int n, tsf_rng *rng) {
    int i;
    TSF_ASSERT(n >= 0 && (n == 0 || (perm && rng)));
    for (i = 0; i < n; i++) perm[i] = i;
    for (i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = tsf__clip_below(rng, i + 1), v = perm[i];
        perm[i] = perm[j], perm[j] = v;
    }
}

/* ---- class names and manifests ------------------------------------------------------------ */
/* The next line of text[0..n) from *pos, without its newline, spaces, tabs and CR at either
   end. Returns 0 at the end of the text. */
static int tsf__clip_line(const char *text, size_t n, size_t *pos, const char **s, size_t *len) {
    size_t p = *pos, e = *pos;
    if (p >= n) return 0;
    while (e < n && text[e] != '\n') e++;
    *pos = e < n ? e + 1 : e;
    while (p < e && (text[p] == ' ' || text[p] == '\t' || text[p] == '\r')) p++;
    while (e > p && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r')) e--;
    *s = text + p, *len = e - p;
    return 1;
}

/* Skip a UTF-8 byte order mark; reject NUL bytes (not a text file). */
static tsf_status tsf__clip_text_start(const char *text, size_t n, size_t *pos, tsf_error *err) {
    *pos = n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (memchr(text, 0, n))
        return tsf__clip_msg(err, "a NUL byte: not a text file", 0, 0, NULL, 0), TSF_ERR_FORMAT;
    return TSF_OK;
}

typedef struct tsf__clip_ref {
    const char *s; /* a NUL-terminated name or path */
    int line, index;
} tsf__clip_ref;

static int tsf__clip_ref_cmp(const void *a, const void *b) {
    const tsf__clip_ref *x = (const tsf__clip_ref *)a, *y = (const tsf__clip_ref *)b;
    int c = strcmp(x->s, y->s);
    return c ? c : x->line - y->line;
}

/* Sort refs[0..n) by string; fill sorted (may be NULL) with their indices in that order.
   Returns the first ref whose string repeats the one before it, or -1. */
static int tsf__clip_sort_dups(tsf__clip_ref *refs, int n, int *sorted) {
    int i, dup = -1;
    qsort(refs, (size_t)n, sizeof *refs, tsf__clip_ref_cmp);
    for (i = 0; i < n; i++) {
        if (sorted) sorted[i] = refs[i].index;
        if (i > 0 && dup < 0 && strcmp(refs[i].s, refs[i - 1].s) == 0) dup = i;
    }
    return dup;
}

TSFDEF void tsf_classes_free(tsf_classes *c) {
    if (!c) return;
    if (c->memory) TSF_FREE(c->memory, c->alloc_ctx);
    memset(c, 0, sizeof *c);
}

TSFDEF tsf_status tsf_classes_parse(tsf_classes *c, const char *text, size_t n, void *alloc_ctx,
                                    tsf_error *err) {
    const int max_classes = 1 << 24;
    size_t pos, start, len, chars = 0, bytes;
    const char *s;
    char *dst;
    int count = 0, line, k, dup;
    tsf__clip_ref *refs;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!c) return TSF_ERR_ARG;
    memset(c, 0, sizeof *c);
    c->alloc_ctx = alloc_ctx;
    if (!text && n) return TSF_ERR_ARG;
    if (!text) text = "";
    if ((st = tsf__clip_text_start(text, n, &start, err)) != TSF_OK) return st;
    for (pos = start; tsf__clip_line(text, n, &pos, &s, &len);)
        if (len) {
            if (++count > max_classes)
                return tsf__clip_msg(err, "more than %d classes", max_classes, 0, NULL, 0),
                       TSF_ERR_FORMAT;
            chars += len + 1; /* <= n + count: no overflow */
        }
    if (count == 0) return tsf__clip_msg(err, "no class names", 0, 0, NULL, 0), TSF_ERR_FORMAT;
    bytes = (size_t)count * (sizeof(char *) + sizeof(int));
    if (chars > ((size_t)-1) - bytes) return TSF_ERR_OVERFLOW;
    c->memory = TSF_MALLOC(bytes + chars, alloc_ctx);
    refs = (tsf__clip_ref *)TSF_MALLOC((size_t)count * sizeof *refs, alloc_ctx);
    if (!c->memory || !refs) {
        if (refs) TSF_FREE(refs, alloc_ctx);
        tsf_classes_free(c);
        return TSF_ERR_ALLOC;
    }
    c->names = (char **)c->memory;
    c->sorted = (int *)(void *)(c->names + count);
    dst = (char *)(c->sorted + count);
    for (pos = start, line = 1, k = 0; tsf__clip_line(text, n, &pos, &s, &len); line++)
        if (len) {
            c->names[k] = dst;
            memcpy(dst, s, len), dst[len] = 0, dst += len + 1;
            refs[k].s = c->names[k], refs[k].line = line, refs[k].index = k;
            k++;
        }
    c->count = count;
    dup = tsf__clip_sort_dups(refs, count, c->sorted);
    if (dup >= 0) {
        tsf__clip_msg(err, "line %d: duplicate class name \"%s\" (first on line %d)",
                      refs[dup].line, refs[dup - 1].line, refs[dup].s, (size_t)-1);
    }
    TSF_FREE(refs, alloc_ctx);
    if (dup >= 0) {
        tsf_classes_free(c);
        return TSF_ERR_FORMAT;
    }
    return TSF_OK;
}

/* Binary search of name[0..n) in the sorted names; -1 when absent. */
static int tsf__clip_find(const tsf_classes *c, const char *name, size_t n) {
    int lo = 0, hi = c->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, k = c->sorted[mid];
        int cmp = strncmp(c->names[k], name, n);
        if (cmp == 0) cmp = c->names[k][n] ? 1 : 0; /* longer than name: sorts after it */
        if (cmp == 0) return k;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

TSFDEF int tsf_classes_find(const tsf_classes *c, const char *name) {
    if (!c || !name || !c->count) return -1;
    return tsf__clip_find(c, name, strlen(name));
}

TSFDEF void tsf_manifest_free(tsf_manifest *m) {
    if (!m) return;
    if (m->memory) TSF_FREE(m->memory, m->alloc_ctx);
    memset(m, 0, sizeof *m);
}

static int tsf__clip_is_abs(const char *p, size_t n) {
#ifdef _WIN32
    if (n >= 2 && p[1] == ':') return 1;
    if (n >= 1 && p[0] == '\\') return 1;
#endif
    return n >= 1 && p[0] == '/';
}

/* ASCII case-insensitive: is s[0..n) the word w? */
static int tsf__clip_is_word(const char *s, size_t n, const char *w) {
    size_t i;
    for (i = 0; i < n; i++) {
        char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (!w[i] || a != w[i]) return 0;
    }
    return w[n] == 0;
}

/* Split a manifest line at its last comma into trimmed path and label fields. */
static int tsf__clip_fields(const char *s, size_t len, size_t *plen, const char **lab,
                            size_t *llen) {
    size_t comma = len, e;
    while (comma > 0 && s[comma - 1] != ',') comma--;
    if (comma == 0) return 0;
    e = comma - 1; /* the path: s[0..e) */
    while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
    *plen = e;
    *lab = s + comma, *llen = len - comma;
    while (*llen && (**lab == ' ' || **lab == '\t')) (*lab)++, (*llen)--;
    return 1;
}

/* A label: digits (a class index) or a class name. Sets err and returns -1 when invalid. */
static int tsf__clip_label(const char *s, size_t n, const tsf_classes *classes, int line,
                           tsf_error *err) {
    size_t i = 0;
    long long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && v < (1ll << 31)) v = v * 10 + (s[i++] - '0');
    if (i == n && v <= 0x7FFFFFFF) {
        if (classes && classes->count && v >= classes->count) {
            if (err) /* the classes file's K: 0 .. K-1 */
                snprintf(err->msg, sizeof err->msg,
                         "line %d: label %lld is not a class index (the %d classes are 0 .. %d)",
                         line, v, classes->count, classes->count - 1);
            return -1;
        }
        return (int)v;
    }
    if (classes && classes->count) {
        int k = tsf__clip_find(classes, s, n);
        if (k < 0) tsf__clip_msg(err, "line %d: unknown label \"%s\"", line, 0, s, n);
        return k;
    }
    tsf__clip_msg(err, "line %d: label \"%s\" is not a class index (no class names given)", line, 0,
                  s, n);
    return -1;
}

TSFDEF tsf_status tsf_manifest_parse(tsf_manifest *m, const char *text, size_t n,
                                     const char *base_dir, const tsf_classes *classes,
                                     void *alloc_ctx, tsf_error *err) {
    const int max_clips = 1 << 30;
    size_t pos, start, len, plen, llen, blen = base_dir ? strlen(base_dir) : 0, chars = 0, bytes;
    const char *s, *lab;
    char *dst = NULL;
    int count = 0, line, k, dup, first = 1, pass;
    tsf__clip_ref *refs = NULL;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m);
    m->alloc_ctx = alloc_ctx;
    if (!text && n) return TSF_ERR_ARG;
    if (!text) text = "";
    if ((st = tsf__clip_text_start(text, n, &start, err)) != TSF_OK) return st;
    /* pass 0 checks every line and counts; pass 1 fills the arrays */
    for (pass = 0; pass < 2; pass++) {
        k = 0, first = 1;
        for (pos = start, line = 1; tsf__clip_line(text, n, &pos, &s, &len); line++) {
            int label;
            size_t need;
            if (!len) continue;
            if (!tsf__clip_fields(s, len, &plen, &lab, &llen))
                return tsf__clip_msg(err, "line %d: expected path,label", line, 0, NULL, 0),
                       TSF_ERR_FORMAT;
            if (first && tsf__clip_is_word(s, plen, "path") &&
                tsf__clip_is_word(lab, llen, "label")) {
                first = 0;
                continue; /* the header line */
            }
            first = 0;
            if (!plen || !llen)
                return tsf__clip_msg(err, "line %d: empty %s field", line, 0,
                                     plen ? "label" : "path", (size_t)-1),
                       TSF_ERR_FORMAT;
            need = plen + 1 + (blen && !tsf__clip_is_abs(s, plen) ? blen + 1 : 0);
            if (pass == 0) {
                if (tsf__clip_label(lab, llen, classes, line, err) < 0) return TSF_ERR_FORMAT;
                if (++count > max_clips)
                    return tsf__clip_msg(err, "more than %d clips", max_clips, 0, NULL, 0),
                           TSF_ERR_FORMAT;
                if (need > ((size_t)-1) - chars) return TSF_ERR_OVERFLOW;
                chars += need;
                continue;
            }
            label = tsf__clip_label(lab, llen, classes, line, NULL);
            m->paths[k] = dst;
            if (need > plen + 1) { /* base_dir + '/' + path, with no doubled '/' */
                memcpy(dst, base_dir, blen), dst += blen;
                if (base_dir[blen - 1] != '/') *dst++ = '/';
            }
            memcpy(dst, s, plen), dst[plen] = 0, dst += plen + 1;
            m->labels[k] = label, m->lines[k] = line;
            refs[k].s = m->paths[k], refs[k].line = line, refs[k].index = k;
            k++;
        }
        if (pass == 0) {
            if (count == 0) return tsf__clip_msg(err, "no clips", 0, 0, NULL, 0), TSF_ERR_FORMAT;
            bytes = (size_t)count * (sizeof(char *) + 2 * sizeof(int));
            if (chars > ((size_t)-1) - bytes) return TSF_ERR_OVERFLOW;
            m->memory = TSF_MALLOC(bytes + chars, alloc_ctx);
            refs = (tsf__clip_ref *)TSF_MALLOC((size_t)count * sizeof *refs, alloc_ctx);
            if (!m->memory || !refs) {
                if (refs) TSF_FREE(refs, alloc_ctx);
                tsf_manifest_free(m);
                return TSF_ERR_ALLOC;
            }
            m->paths = (char **)m->memory;
            m->labels = (int *)(void *)(m->paths + count);
            m->lines = m->labels + count;
            dst = (char *)(m->lines + count);
        }
    }
    m->count = count;
    dup = tsf__clip_sort_dups(refs, count, NULL);
    if (dup >= 0)
        tsf__clip_msg(err, "line %d: duplicate path \"%s\" (first on line %d)", refs[dup].line,
                      refs[dup - 1].line, refs[dup].s, (size_t)-1);
    TSF_FREE(refs, alloc_ctx);
    if (dup >= 0) {
        tsf_manifest_free(m);
        return TSF_ERR_FORMAT;
    }
    return TSF_OK;
}

#ifndef TSF_NO_STDIO
/* Read a whole text file (at most 1 GiB) into a NUL-terminated TSF_MALLOC buffer. */
static tsf_status tsf__clip_slurp(const char *path, void *ctx, char **out, size_t *n,
                                  tsf_error *err) {
    const size_t max = (size_t)1 << 30;
    size_t cap = 4096, len = 0, got;
    char *buf = (char *)TSF_MALLOC(cap + 1, ctx), *bigger;
    const char *why = "no path";
    FILE *f;
    *out = NULL, *n = 0;
    if (!buf) return TSF_ERR_ALLOC;
    f = path ? tsf__fopen_regular(path, &why) : NULL;
    if (!f) {
        TSF_FREE(buf, ctx);
        return tsf__clip_msg(err, "cannot open the file: %s", 0, 0, why, strlen(why)), TSF_ERR_IO;
    }
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len < cap) continue;
        if (cap >= max) {
            fclose(f), TSF_FREE(buf, ctx);
            return tsf__clip_msg(err, "larger than 1 GiB", 0, 0, NULL, 0), TSF_ERR_OVERFLOW;
        }
        bigger = (char *)TSF_MALLOC(2 * cap + 1, ctx);
        if (!bigger) {
            fclose(f), TSF_FREE(buf, ctx);
            return TSF_ERR_ALLOC;
        }
        memcpy(bigger, buf, len);
        TSF_FREE(buf, ctx);
        buf = bigger, cap *= 2;
    }
    if (ferror(f)) {
        fclose(f), TSF_FREE(buf, ctx);
        return tsf__clip_msg(err, "cannot read the file", 0, 0, NULL, 0), TSF_ERR_IO;
    }
    fclose(f);
    buf[len] = 0;
    *out = buf, *n = len;
    return TSF_OK;
}

TSFDEF tsf_status tsf_classes_load(tsf_classes *c, const char *path, void *alloc_ctx,
                                   tsf_error *err) {
    char *text;
    size_t n;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!c) return TSF_ERR_ARG;
    memset(c, 0, sizeof *c);
    st = tsf__clip_slurp(path, alloc_ctx, &text, &n, err);
    if (st != TSF_OK) return st;
    st = tsf_classes_parse(c, text, n, alloc_ctx, err);
    TSF_FREE(text, alloc_ctx);
    return st;
}

TSFDEF tsf_status tsf_manifest_load(tsf_manifest *m, const char *path, const tsf_classes *classes,
                                    void *alloc_ctx, tsf_error *err) {
    char *text, *dir;
    size_t n, dlen;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!m) return TSF_ERR_ARG;
    memset(m, 0, sizeof *m);
    st = tsf__clip_slurp(path, alloc_ctx, &text, &n, err);
    if (st != TSF_OK) return st;
    for (dlen = strlen(path); dlen > 0 && path[dlen - 1] != '/'; dlen--) {
#ifdef _WIN32
        if (path[dlen - 1] == '\\') break;
#endif
    }
    dir = (char *)TSF_MALLOC(dlen + 1, alloc_ctx); /* the folder, with its final '/' */
    if (!dir) {
        TSF_FREE(text, alloc_ctx);
        return TSF_ERR_ALLOC;
    }
    memcpy(dir, path, dlen), dir[dlen] = 0;
    st = tsf_manifest_parse(m, text, n, dir, classes, alloc_ctx, err);
    TSF_FREE(dir, alloc_ctx);
    TSF_FREE(text, alloc_ctx);
    return st;
}

TSFDEF tsf_status tsf_manifest_sample(float *x, int *label, const tsf_manifest *m, int i,
                                      const tsf_sample_opts *o, tsf_rng *rng, int view,
                                      tsf_error *err) {
    tsf_clip clip;
    tsf_status st;
    if (err) err->msg[0] = 0;
    if (!m || i < 0 || i >= m->count) return TSF_ERR_ARG;
    st = tsf_clip_open(&clip, m->paths[i], m->alloc_ctx, err);
    if (st != TSF_OK) return st;
    st = tsf_clip_sample(x, &clip, o, rng, view);
    if (st == TSF_ERR_IO) tsf__clip_msg(err, "cannot read the file", 0, 0, NULL, 0);
    tsf_clip_close(&clip);
    if (st == TSF_OK && label) *label = m->labels[i];
    return st;
}
#endif /* TSF_NO_STDIO */

/* ==========================================================================================
   MATMUL
   C (+)= op(A) . op(B), the GotoBLAS way, reduced to what a transformer needs:
   1. C is cut into tasks: column blocks of at most TSF_MM_NC, and as few row groups as give
      TSF__MM_TASKS tasks (at most TSF_MM_MC rows each), all of about the same size. Tasks
      are the unit of parallelism, dealt out to whichever thread is free; their boundaries
      depend on the shape alone, and an element's sum runs in the same order whatever task
      computes it, so results never depend on the thread count.
   2. In a task, K is walked in slices of TSF_MM_KC. For each slice the task packs its
      KC x NC block of op(B) into panels of NR columns (k-major: panel[k][0..NR-1]), and for
      each MR rows of op(A) a KC x MR panel (panel[k][0..MR-1]). Padding is zero.
   3. A micro-kernel multiplies an A panel by a B panel into an MR x NR tile of C held in
      registers: per k, it loads NR values of B, broadcasts each of the MR values of A and
      does MR*NR fused multiply-adds.
   Packing makes every micro-kernel read contiguous and aligned to nothing in particular,
   and it is where transposed operands are handled, so there is one kernel per ISA.
   4. With a work space (tsf_matmul_desc.work) and C wider than one column block, the units
      of work are row groups with all their columns instead (tsf__matmul_by_rows): a group
      packs its panels of op(A) for a slice of K into the work space once, and every column
      block's B block runs against them. Step 1 packs them again for each column block,
      which cost 9-12% of a ViT-B layer's time (A's rows come from the L3 cache, transposed).
      Each element's sum runs over the same slices of K in the same order either way.
   5. With op(B) packed already (tsf_matmul_desc.packed_b, made by tsf_matmul_pack_b: the
      model's weights after tsf_model_pack_weights), step 2 packs no B: its blocks lie one
      after another in that buffer, and a block's lines are asked for all at once before
      its first row panel (they come from memory). The same bits.
   ========================================================================================== */

/* A micro-kernel computes one MR x NR tile of C (only its first `rows` rows and `cols`
   columns are written):
       C // (rows, cols), row stride ldc  (+)=  a // (kc, MR) . b // (kc, NR), b row stride ldb
   a is a packed panel (padded with zeros; kernels with fn_a can also read op(A) in place,
   below). b is a packed panel (ldb == NR) or, for kernels with `direct_b`, op(B) itself,
   read in place with masked loads. With accumulate == 0 the tile is overwritten. Kernels
   without `partial` always get rows == MR and cols == NR. */
typedef void (*tsf__ukernel_fn)(int kc, const float *a, const float *b, size_t ldb, float *c,
                                size_t ldc, int accumulate, int rows, int cols);
/* A dot-product kernel for C = A.B^T with few columns (N <= 16), where both operands run
   along K and a packed panel would be mostly padding (attention scores over a few frames):
       C // (M, N), row stride ldc  (+)=  A // (M, K), stride lda  .  B // (N, K), stride ldb ^T */
typedef void (*tsf__dot_fn)(int M, int N, int K, const float *A, size_t lda, const float *B,
                            size_t ldb, float *C, size_t ldc, int accumulate);
/* The same with A read in place, not packed: the tile's element (r, p) of op(A) at
   a[r * ars + p * aks] (rows past `rows` are not read); bias // (cols), if not NULL, starts
   every row's sums (a linear layer's bias, in the first block of K). */
typedef void (*tsf__ukernel_a_fn)(int kc, const float *a, size_t ars, size_t aks, const float *b,
                                  size_t ldb, const float *bias, float *c, size_t ldc,
                                  int accumulate, int rows, int cols);
typedef struct tsf__ukernel {
    tsf__ukernel_fn fn;
    int mr, nr;
    int partial;            /* writes partial tiles itself (else the driver uses a scratch tile) */
    int direct_b;           /* can read an unpacked op(B) in place (masked loads): 1 for
                               products of few rows, 2 also where a block of B is contiguous */
    tsf__dot_fn dot;        /* NULL: use fn for every shape */
    tsf__ukernel_a_fn fn_a; /* NULL: A is always packed */
} tsf__ukernel;

/* The portable kernel: 4 x 16. The j loop is written for compilers to vectorise: with
   -march=native gcc turns it into the same FMA code as the hand-written kernels. */
#define TSF__P_MR 4
#define TSF__P_NR 16
static void tsf__ukernel_portable(int kc, const float *a, const float *b, size_t ldb, float *c,
                                  size_t ldc, int accumulate, int rows, int cols) {
    /* one row of accumulators per variable, so that compilers keep them in registers */
    float c0[TSF__P_NR] = {0}, c1[TSF__P_NR] = {0}, c2[TSF__P_NR] = {0}, c3[TSF__P_NR] = {0};
    float *acc[TSF__P_MR];
    int i, j, p;
    for (p = 0; p < kc; p++) {
        const float *bp = b + (size_t)p * ldb, *ap = a + (size_t)p * TSF__P_MR;
        float a0 = ap[0], a1 = ap[1], a2 = ap[2], a3 = ap[3];
        for (j = 0; j < TSF__P_NR; j++) {
            float bj = bp[j];
            c0[j] += a0 * bj;
            c1[j] += a1 * bj;
            c2[j] += a2 * bj;
            c3[j] += a3 * bj;
        }
    }
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#if defined(TSF__AVX512) || defined(TSF__AVX2)
/* The dot-product kernels' edge: the n sums out, a block of rows i0.. and w columns j0..
   (out[q] for row i0 + q / w, column j0 + q % w), into C where inside M x N. */
static void tsf__dot_edge(float *C, size_t ldc, const float *out, int n, int w, int i0, int j0,
                          int M, int N, int accumulate) {
    int q;
    for (q = 0; q < n; q++) {
        int i = i0 + q / w, j = j0 + q % w;
        if (i < M && j < N) {
            float *cp = C + (size_t)i * ldc + j;
            *cp = accumulate ? *cp + out[q] : out[q];
        }
    }
}
#endif

#if defined(TSF__AVX512)
/* 12 x 32: 24 zmm accumulators; per k, two zmm of B and one broadcast of A per row.
   Masks handle partial tiles, so B can also be read in place; a tile of at most 16
   columns runs a 12 x 16 loop instead. */
#define TSF__MR 12
#define TSF__NR 32
#define TSF__PARTIAL 1
#define TSF__DIRECT_B 2
/* A is read in place only by products of at most 64 columns (attention's P.V with heads of
   64): there a panel of A would serve two tiles (on a Zen 5 attention's P.V products ran
   1.09-1.14x as fast in place in bench_matmul, the 8 x 64 x 8 ones up to 1.8x in a build
   without OpenMP); wider products pack it. */
#define TSF__DIRECT_A_MAX_N 64
/* clang-format off */
#define TSF__Z_ROWS4(X) X(0, c00, c01) X(1, c10, c11) X(2, c20, c21) X(3, c30, c31)
#define TSF__Z_ROWS8(X) TSF__Z_ROWS4(X) X(4, c40, c41) X(5, c50, c51) X(6, c60, c61) X(7, c70, c71)
#define TSF__Z_ROWS(X) TSF__Z_ROWS8(X) X(8, c80, c81) X(9, c90, c91) X(10, ca0, ca1) X(11, cb0, cb1)
/* clang-format on */
/* The kernel's body, for both ways of reading A: a packed panel (ars 1, aks MR, inplace 0:
   row r's value at step p is a[p*MR + r]) or op(A) in place (inplace 1: a[r*ars + p*aks], rows
   past the edge read the last row again, not stored). Inlined into each, so the packed one
   keeps its constant offsets. bias: NULL, or the start of the sums (in place only). */
TSF__FORCE_INLINE void tsf__ukernel_z(int kc, const float *a, size_t ars, size_t aks,
                                      const float *b, size_t ldb, const float *bias, float *c,
                                      size_t ldc, int accumulate, int rows, int cols, int inplace) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    __m512 c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1, cb0, cb1, ar, b0, b1;
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    size_t q = 0; /* p * aks */
    int p;
    /* The tile of C is read (accumulate) or written only after the k loop, and its 12 rows
       lie far apart (in a large product, in L3 or memory): asked for now, the cache lines
       arrive while the loop runs instead of stalling the stores (3-8% on ViT-B's layers on
       a Zen 5, whose 512-bit FMAs finish a tile in half the time; no change with AVX2). */
    for (p = 0; p < rows; p++) {
        _mm_prefetch((const char *)(c + (size_t)p * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)p * ldc + 16), _MM_HINT_T0);
    }
#define TSF__Z_A(r) a[(inplace ? (size_t)tsf__min(r, rows - 1) * ars : (size_t)(r)) + q]
#define TSF__Z_ZERO(r, x0, x1) x0 = b0, x1 = b1;
#define TSF__Z_FMA2(r, x0, x1)                                                                     \
    ar = _mm512_set1_ps(TSF__Z_A(r));                                                              \
    x0 = _mm512_fmadd_ps(ar, b0, x0);                                                              \
    x1 = _mm512_fmadd_ps(ar, b1, x1);
#define TSF__Z_FMA1(r, x0, x1) x0 = _mm512_fmadd_ps(_mm512_set1_ps(TSF__Z_A(r)), b0, x0);
#define TSF__Z_STORE(r, x0, x1)                                                                    \
    if (r < rows) {                                                                                \
        float *cr = c + (r)*ldc;                                                                   \
        if (accumulate) {                                                                          \
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, cr));                                 \
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, cr + 16));                            \
        }                                                                                          \
        _mm512_mask_storeu_ps(cr, m0, x0);                                                         \
        _mm512_mask_storeu_ps(cr + 16, m1, x1);                                                    \
    }
/* the k loop over 16 or 32 columns, for the first 4, 8 or 12 rows (a partial tile's rows past
   the edge are not computed: they would not be stored) */
#define TSF__Z_LOOP2(ROWS)                                                                         \
    for (p = 0; p < kc; p++, q += aks, b += ldb) {                                                 \
        b0 = _mm512_maskz_loadu_ps(m0, b);                                                         \
        b1 = _mm512_maskz_loadu_ps(m1, b + 16);                                                    \
        ROWS(TSF__Z_FMA2)                                                                          \
    }
#define TSF__Z_LOOP1(ROWS)                                                                         \
    for (p = 0; p < kc; p++, q += aks, b += ldb) {                                                 \
        b0 = _mm512_maskz_loadu_ps(m0, b);                                                         \
        ROWS(TSF__Z_FMA1)                                                                          \
    }
#define TSF__Z_BY_ROWS(LOOP)                                                                       \
    if (rows > 8)                                                                                  \
        LOOP(TSF__Z_ROWS)                                                                          \
    else if (rows > 4)                                                                             \
        LOOP(TSF__Z_ROWS8)                                                                         \
    else                                                                                           \
        LOOP(TSF__Z_ROWS4)
    b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps(); /* the sums' start */
    b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    TSF__Z_ROWS(TSF__Z_ZERO)
    if (cols > 16) {
        TSF__Z_BY_ROWS(TSF__Z_LOOP2)
    } else {
        TSF__Z_BY_ROWS(TSF__Z_LOOP1)
    }
    TSF__Z_ROWS(TSF__Z_STORE)
#undef TSF__Z_BY_ROWS
#undef TSF__Z_LOOP2
#undef TSF__Z_LOOP1
#undef TSF__Z_ZERO
#undef TSF__Z_FMA2
#undef TSF__Z_FMA1
#undef TSF__Z_STORE
#undef TSF__Z_A
}
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    tsf__ukernel_z(kc, a, 1, TSF__MR, b, ldb, NULL, c, ldc, accumulate, rows, cols, 0);
}
static void tsf__ukernel_simd_a(int kc, const float *a, size_t ars, size_t aks, const float *b,
                                size_t ldb, const float *bias, float *c, size_t ldc, int accumulate,
                                int rows, int cols) {
    tsf__ukernel_z(kc, a, ars, aks, b, ldb, bias, c, ldc, accumulate, rows, cols, 1);
}
#define TSF__KERNEL_A tsf__ukernel_simd_a

/* GCC 12's AVX-512 headers start some shuffles from a self-initialised "undefined" vector,
   which its -Wmaybe-uninitialized mistakes for a real uninitialised read in C++. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/* Four vectors -> one whose 128-bit lane l holds, in order, the sums of a, b, c and d's four
   lanes in l: pairs of vectors interleaved and added, then pairs of pairs. */
static inline __m512 tsf__sum4_lanes(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512d ab =
        _mm512_castps_pd(_mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)));
    __m512d cd =
        _mm512_castps_pd(_mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d)));
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(ab, cd)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(ab, cd)));
}
/* 8 x 8 blocks of C = A . B^T, 16 accumulators. B's rows are regrouped so that a vector
   holds the same four depths (a "quad") of four rows: for rows j0+4J.. j0+4J+3 and quad q of
   a step of 16 depths, pJq = [row 0's quad q | row 1's | row 2's | row 3's], a 4 x 4 transpose
   of 128-bit blocks (two lane shuffles per vector). Row I of A's quad q, broadcast to the four
   128-bit lanes, times pJq adds to lane l of accumulator xIJ four partial sums of C[I][4J + l];
   A's broadcasts come straight from memory. At the end the four accumulators of a pair of rows
   fold into one vector of their 16 sums (tsf__sum4_lanes, then one permutation into row
   order). A dot product per accumulator (16 lanes of one C element, the kernel before this
   one) needed 30 shuffles and 15 adds per 16 sums; this one needs 16 shuffles for B per step
   and 7 shuffles and 3 adds per 16 sums. On a Zen 5, ViT-B's temporal 8 x 8 x 64 products (q
   and k in the rows of qkv, 2352 a call) took 85-91 ns an item instead of 108-115 (OpenBLAS:
   92-108 ns); in L1 the gain was only 5%: most of it came from the order of the loads, each
   of B's rows read once, whole, at the start of a step. Every name in registers: with arrays,
   compilers kept some of the sums on the stack. Loads past K in the last step are masked
   off (B's as zeros, A's quads as zeros too, so that no value past a row's end enters a
   sum). */
/* clang-format off */
static void tsf__dot_avx512(int M, int N, int K, const float *A, size_t lda, const float *B,
                            size_t ldb, float *C, size_t ldc, int accumulate) {
    /* tsf__sum4_lanes leaves C[I][l], C[I][4 + l], C[I+1][l], C[I+1][4 + l] in lane l */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int i0, j0, k;
    for (j0 = 0; j0 < N; j0 += 8)
        for (i0 = 0; i0 < M; i0 += 8) { /* rows past the edge repeat the last one */
#define TSF__Q_ROW(P, X, ld, I, i, n) const float *P##I = X + (size_t)tsf__min(i + I, n - 1) * ld;
#define TSF__Q_ROWS(P, X, ld, i, n)                                                                \
    TSF__Q_ROW(P, X, ld, 0, i, n) TSF__Q_ROW(P, X, ld, 1, i, n) TSF__Q_ROW(P, X, ld, 2, i, n)      \
    TSF__Q_ROW(P, X, ld, 3, i, n) TSF__Q_ROW(P, X, ld, 4, i, n) TSF__Q_ROW(P, X, ld, 5, i, n)      \
    TSF__Q_ROW(P, X, ld, 6, i, n) TSF__Q_ROW(P, X, ld, 7, i, n)
            TSF__Q_ROWS(a, A, lda, i0, M) TSF__Q_ROWS(b, B, ldb, j0, N)
            __m512 x00 = _mm512_setzero_ps(), x01 = x00, x10 = x00, x11 = x00, x20 = x00;
            __m512 x21 = x00, x30 = x00, x31 = x00, x40 = x00, x41 = x00, x50 = x00, x51 = x00;
            __m512 x60 = x00, x61 = x00, x70 = x00, x71 = x00, r01, r23, r45, r67;
            for (k = 0; k < K; k += 16) {
                int left = K - k;
                __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
                __m512 p00, p01, p02, p03, p10, p11, p12, p13, v0, v1, v2, v3, t0, t1;
                /* pJq: quad q of B's rows 4J..4J+3, two shuffles each */
#define TSF__Q_TRANSPOSE(J, r0, r1, r2, r3)                                                        \
    v0 = _mm512_maskz_loadu_ps(m, r0 + k), v1 = _mm512_maskz_loadu_ps(m, r1 + k);                  \
    v2 = _mm512_maskz_loadu_ps(m, r2 + k), v3 = _mm512_maskz_loadu_ps(m, r3 + k);                  \
    t0 = _mm512_shuffle_f32x4(v0, v1, 0x44), t1 = _mm512_shuffle_f32x4(v2, v3, 0x44);              \
    p##J##0 = _mm512_shuffle_f32x4(t0, t1, 0x88), p##J##1 = _mm512_shuffle_f32x4(t0, t1, 0xDD);    \
    t0 = _mm512_shuffle_f32x4(v0, v1, 0xEE), t1 = _mm512_shuffle_f32x4(v2, v3, 0xEE);              \
    p##J##2 = _mm512_shuffle_f32x4(t0, t1, 0x88), p##J##3 = _mm512_shuffle_f32x4(t0, t1, 0xDD);
                TSF__Q_TRANSPOSE(0, b0, b1, b2, b3) TSF__Q_TRANSPOSE(1, b4, b5, b6, b7)
                /* xIJ += (row I's quad q, in every lane) * pJq */
#define TSF__Q_FMA(I, q, LOAD)                                                                     \
    {                                                                                              \
        __m512 aq = _mm512_broadcast_f32x4(LOAD(q, a##I + k + 4 * q));                            \
        x##I##0 = _mm512_fmadd_ps(aq, p0##q, x##I##0);                                             \
        x##I##1 = _mm512_fmadd_ps(aq, p1##q, x##I##1);                                             \
    }
#define TSF__Q_STEP(I, LOAD)                                                                       \
    TSF__Q_FMA(I, 0, LOAD) TSF__Q_FMA(I, 1, LOAD) TSF__Q_FMA(I, 2, LOAD) TSF__Q_FMA(I, 3, LOAD)
#define TSF__Q_STEPS(LOAD)                                                                         \
    TSF__Q_STEP(0, LOAD) TSF__Q_STEP(1, LOAD) TSF__Q_STEP(2, LOAD) TSF__Q_STEP(3, LOAD)            \
    TSF__Q_STEP(4, LOAD) TSF__Q_STEP(5, LOAD) TSF__Q_STEP(6, LOAD) TSF__Q_STEP(7, LOAD)
#define TSF__Q_LOAD(q, p) _mm_loadu_ps(p)
#define TSF__Q_LOAD_PART(q, p)                                                                     \
    _mm512_castps512_ps128(_mm512_maskz_loadu_ps((__mmask16)((m >> (4 * q)) & 15), p))
                if (left >= 16) {
                    TSF__Q_STEPS(TSF__Q_LOAD)
                } else {
                    TSF__Q_STEPS(TSF__Q_LOAD_PART)
                }
            }
            /* rII': rows I and I' = I + 1, eight sums each */
            r01 = _mm512_permutexvar_ps(order, tsf__sum4_lanes(x00, x01, x10, x11));
            r23 = _mm512_permutexvar_ps(order, tsf__sum4_lanes(x20, x21, x30, x31));
            r45 = _mm512_permutexvar_ps(order, tsf__sum4_lanes(x40, x41, x50, x51));
            r67 = _mm512_permutexvar_ps(order, tsf__sum4_lanes(x60, x61, x70, x71));
            if (i0 + 8 <= M && j0 + 8 <= N) {
#define TSF__Q_STORE(r, I)                                                                         \
    {                                                                                              \
        float *c0 = C + (size_t)(i0 + I) * ldc + j0, *c1 = c0 + ldc;                               \
        __m256 s0 = _mm512_castps512_ps256(r), /* the upper half: AVX512F has no extractf32x8 */   \
               s1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1));              \
        if (accumulate)                                                                            \
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(c0)),                                           \
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(c1));                                           \
        _mm256_storeu_ps(c0, s0), _mm256_storeu_ps(c1, s1);                                        \
    }
                TSF__Q_STORE(r01, 0) TSF__Q_STORE(r23, 2) TSF__Q_STORE(r45, 4) TSF__Q_STORE(r67, 6)
            } else {
                float out[64];
                _mm512_storeu_ps(out, r01), _mm512_storeu_ps(out + 16, r23);
                _mm512_storeu_ps(out + 32, r45), _mm512_storeu_ps(out + 48, r67);
                tsf__dot_edge(C, ldc, out, 64, 8, i0, j0, M, N, accumulate);
            }
        }
}
/* clang-format on */
#undef TSF__Q_ROW
#undef TSF__Q_ROWS
#undef TSF__Q_TRANSPOSE
#undef TSF__Q_FMA
#undef TSF__Q_STEP
#undef TSF__Q_STEPS
#undef TSF__Q_LOAD
#undef TSF__Q_LOAD_PART
#undef TSF__Q_STORE
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define TSF__DOT tsf__dot_avx512
#elif defined(TSF__AVX2)
/* 6 x 16: 12 ymm accumulators; per k, two ymm of B and one broadcast of A per row. A
   partial tile stores its rows and columns through masks, so it needs no scratch tile; its
   columns past the edge are also loaded through masks, so B can be read in place. */
#define TSF__MR 6
#define TSF__NR 16
#define TSF__PARTIAL 1
#define TSF__DIRECT_B 1 /* only for products of few rows (packed B runs faster otherwise) */
#define TSF__Y_ROWS3(X) X(0, c00, c01) X(1, c10, c11) X(2, c20, c21)
#define TSF__Y_ROWS(X) TSF__Y_ROWS3(X) X(3, c30, c31) X(4, c40, c41) X(5, c50, c51)
/* A is read through six row pointers, so that the same loop serves a packed panel (ars 1, aks
   MR) and op(A) in place (tsf__ukernel_simd_a). */
static void tsf__ukernel_simd_a(int kc, const float *a, size_t ars, size_t aks, const float *b,
                                size_t ldb, const float *bias, float *c, size_t ldc, int accumulate,
                                int rows, int cols) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, ar, b0, b1;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
    /* rows past the edge read the last row again (not stored) */
    const float *a0 = a, *a1 = a + (size_t)tsf__min(1, rows - 1) * ars;
    const float *a2 = a + (size_t)tsf__min(2, rows - 1) * ars;
    const float *a3 = a + (size_t)tsf__min(3, rows - 1) * ars;
    const float *a4 = a + (size_t)tsf__min(4, rows - 1) * ars;
    const float *a5 = a + (size_t)tsf__min(5, rows - 1) * ars;
    size_t q = 0; /* p * aks */
    int p, full = rows == TSF__MR && cols == TSF__NR;
#define TSF__Y_ZERO(r, x0, x1) x0 = b0, x1 = b1;
#define TSF__Y_FMA(r, x0, x1)                                                                      \
    ar = _mm256_broadcast_ss(a##r + q);                                                            \
    x0 = _mm256_fmadd_ps(ar, b0, x0);                                                              \
    x1 = _mm256_fmadd_ps(ar, b1, x1);
#define TSF__Y_STORE(r, x0, x1)                                                                    \
    if (full) {                                                                                    \
        if (accumulate) {                                                                          \
            x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c + (r)*ldc));                                  \
            x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + (r)*ldc + 8));                              \
        }                                                                                          \
        _mm256_storeu_ps(c + (r)*ldc, x0);                                                         \
        _mm256_storeu_ps(c + (r)*ldc + 8, x1);                                                     \
    } else if (r < rows) { /* masked lanes are neither read nor written */                         \
        if (accumulate) {                                                                          \
            x0 = _mm256_add_ps(x0, _mm256_maskload_ps(c + (r)*ldc, m0));                           \
            x1 = _mm256_add_ps(x1, _mm256_maskload_ps(c + (r)*ldc + 8, m1));                       \
        }                                                                                          \
        _mm256_maskstore_ps(c + (r)*ldc, m0, x0);                                                  \
        _mm256_maskstore_ps(c + (r)*ldc + 8, m1, x1);                                              \
    }
    b0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps(); /* the sums' start */
    b1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
/* the k loop, for the first 3 or all 6 rows (a partial tile's rows past the edge are not
   computed: they would not be stored) */
#define TSF__Y_LOOP(ROWS, LOAD)                                                                    \
    for (p = 0; p < kc; p++, q += aks, b += ldb) {                                                 \
        b0 = LOAD(b, m0);                                                                          \
        b1 = LOAD(b + 8, m1);                                                                      \
        ROWS(TSF__Y_FMA)                                                                           \
    }
#define TSF__Y_LOADU(p, m) _mm256_loadu_ps(p)
#define TSF__Y_BY_ROWS(LOAD)                                                                       \
    if (rows > 3)                                                                                  \
        TSF__Y_LOOP(TSF__Y_ROWS, LOAD)                                                             \
    else                                                                                           \
        TSF__Y_LOOP(TSF__Y_ROWS3, LOAD)
    TSF__Y_ROWS(TSF__Y_ZERO)
    if (cols < TSF__NR) { /* B in place: its columns past the edge are not read */
        TSF__Y_BY_ROWS(_mm256_maskload_ps)
    } else {
        TSF__Y_BY_ROWS(TSF__Y_LOADU)
    }
#undef TSF__Y_BY_ROWS
#undef TSF__Y_LOADU
    TSF__Y_ROWS(TSF__Y_STORE)
#undef TSF__Y_LOOP
#undef TSF__Y_ZERO
#undef TSF__Y_FMA
#undef TSF__Y_STORE
}
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    tsf__ukernel_simd_a(kc, a, 1, TSF__MR, b, ldb, NULL, c, ldc, accumulate, rows, cols);
}
#define TSF__KERNEL_A tsf__ukernel_simd_a

/* 2 x 4 blocks of dot products, 8 accumulators of 8 lanes each (with two rows of A and one
   of B loaded, 11 of the 16 ymm registers); at the end a tree of horizontal adds turns the 8
   vectors into one vector of their 8 sums. K's last partial step loads through a mask. */
static void tsf__dot_avx2(int M, int N, int K, const float *A, size_t lda, const float *B,
                          size_t ldb, float *C, size_t ldc, int accumulate) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int i0, j0, k, q;
    for (i0 = 0; i0 < M; i0 += 2)
        for (j0 = 0; j0 < N; j0 += 4) {
            const float *a0 = A + (size_t)i0 * lda, *a1 = A + (size_t)tsf__min(i0 + 1, M - 1) * lda;
            const float *b[4]; /* rows past the edge repeat the last one */
            __m256 x00 = _mm256_setzero_ps(), x01 = x00, x02 = x00, x03 = x00, x10 = x00;
            __m256 x11 = x00, x12 = x00, x13 = x00, av0, av1, bv, r;
            float out[8];
            for (q = 0; q < 4; q++) b[q] = B + (size_t)tsf__min(j0 + q, N - 1) * ldb;
            for (k = 0; k < K; k += 8) { /* xIJ = a_I . b_J */
                __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), lane);
                av0 = _mm256_maskload_ps(a0 + k, m), av1 = _mm256_maskload_ps(a1 + k, m);
#define TSF__D_COL(J)                                                                              \
    bv = _mm256_maskload_ps(b[J] + k, m);                                                          \
    x0##J = _mm256_fmadd_ps(av0, bv, x0##J);                                                       \
    x1##J = _mm256_fmadd_ps(av1, bv, x1##J);
                TSF__D_COL(0) TSF__D_COL(1) TSF__D_COL(2) TSF__D_COL(3)
#undef TSF__D_COL
            }
            /* hadd of two vectors: pair sums of each, per 128-bit half; twice: one partial sum
               of each of four per half; the halves added: r[I*4 + J] = a_I . b_J */
            x00 = _mm256_hadd_ps(_mm256_hadd_ps(x00, x01), _mm256_hadd_ps(x02, x03));
            x10 = _mm256_hadd_ps(_mm256_hadd_ps(x10, x11), _mm256_hadd_ps(x12, x13));
            r = _mm256_add_ps(_mm256_permute2f128_ps(x00, x10, 0x20),
                              _mm256_permute2f128_ps(x00, x10, 0x31));
            if (i0 + 2 <= M && j0 + 4 <= N) {
                float *c0 = C + (size_t)i0 * ldc + j0, *c1 = c0 + ldc;
                __m128 r0 = _mm256_castps256_ps128(r), r1 = _mm256_extractf128_ps(r, 1);
                _mm_storeu_ps(c0, accumulate ? _mm_add_ps(r0, _mm_loadu_ps(c0)) : r0);
                _mm_storeu_ps(c1, accumulate ? _mm_add_ps(r1, _mm_loadu_ps(c1)) : r1);
                continue;
            }
            _mm256_storeu_ps(out, r);
            tsf__dot_edge(C, ldc, out, 8, 4, i0, j0, M, N, accumulate);
        }
}
#define TSF__DOT tsf__dot_avx2
#elif defined(TSF__NEON)
/* 8 x 12: 24 q-register accumulators; per k, three vectors of B and two of A, whose lanes
   feed vfmaq_laneq_f32. */
#define TSF__MR 8
#define TSF__NR 12
#define TSF__PARTIAL 0
#define TSF__DIRECT_B 0
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    float32x4_t acc[TSF__MR][3];
    int i, j, p;
    (void)rows, (void)cols; /* always a full tile: the driver handles partial ones */
    for (i = 0; i < TSF__MR; i++)
        for (j = 0; j < 3; j++) acc[i][j] = vdupq_n_f32(0.0f);
    for (p = 0; p < kc; p++, a += TSF__MR, b += ldb) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define TSF__N_FMA(r, av, lane)                                                                    \
    acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane);                                          \
    acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane);                                          \
    acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane);
        /* clang-format off */
        TSF__N_FMA(0, a0, 0) TSF__N_FMA(1, a0, 1) TSF__N_FMA(2, a0, 2) TSF__N_FMA(3, a0, 3)
        TSF__N_FMA(4, a1, 0) TSF__N_FMA(5, a1, 1) TSF__N_FMA(6, a1, 2) TSF__N_FMA(7, a1, 3)
        /* clang-format on */
#undef TSF__N_FMA
    }
    for (i = 0; i < TSF__MR; i++)
        for (j = 0; j < 3; j++) {
            float *cp = c + i * ldc + 4 * j;
            vst1q_f32(cp, accumulate ? vaddq_f32(acc[i][j], vld1q_f32(cp)) : acc[i][j]);
        }
}
#endif

#if defined(TSF__MR)
#ifndef TSF__DOT
#define TSF__DOT NULL
#endif
#ifndef TSF__KERNEL_A
#define TSF__KERNEL_A NULL
#endif
static const tsf__ukernel tsf__ukernel_default = {
    tsf__ukernel_simd, TSF__MR, TSF__NR, TSF__PARTIAL, TSF__DIRECT_B, TSF__DOT, TSF__KERNEL_A};
#else
static const tsf__ukernel tsf__ukernel_default = {
    tsf__ukernel_portable, TSF__P_MR, TSF__P_NR, 1, 0, NULL, NULL};
#endif
static const tsf__ukernel tsf__ukernel_scalar = {
    tsf__ukernel_portable, TSF__P_MR, TSF__P_NR, 1, 0, NULL, NULL};

/* A product is cut into at least this many tasks when it has the rows for them, that is
   when each gets TSF__MM_MIN_ROWS rows (fewer would spend more time packing B). */
#define TSF__MM_TASKS 16
#define TSF__MM_MIN_ROWS 96
/* B is read in place, unpacked, when it is not transposed and used by at most this many rows
   of C (packing would not pay for itself: the small products of attention), or, with
   AVX-512 (direct_b 2), when a task's block of it is contiguous already (rows no longer than
   the block is wide; with AVX2 the products of a small model's backward pass ran 7-9% slower
   so). */
#define TSF__DIRECT_B_MAX_M 64
/* A is read in place, unpacked, by kernels that can (fn_a), when C has at most this many
   columns (AVX2's; AVX-512 sets its own, 64, beside its kernel): a packed panel of A would
   serve only a few tiles (a small model's products). Not
   transposed, A's rows run along K. A transposed A (a weight gradient, dy^T . x) is read in
   place only for at most TSF__DIRECT_AT_MAX_N columns: each step of K then fetches six values
   of another row, which pays for itself over four tiles (K 516, 64 columns: 8-11% faster with
   AVX2) but not over twelve (192 columns: up to 20% slower). */
#ifndef TSF__DIRECT_A_MAX_N
#define TSF__DIRECT_A_MAX_N 256
#endif
#define TSF__DIRECT_AT_MAX_N 64

#if defined(TSF__AVX512) || defined(TSF__AVX2)
/* v[q] = column q of the 8 x 8 block whose rows are v[0..7], in registers (pairs of rows
   interleaved, then pairs of pairs, then 128-bit halves swapped: 24 shuffles for 64
   values). Inlined, so the vectors stay in registers. */
TSF__FORCE_INLINE void tsf__transpose8_v(__m256 v[8]) {
    /* t0 = v0[0] v1[0] v0[1] v1[1] | v0[4] v1[4] v0[5] v1[5], and so on */
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    /* u0 = column 0 of rows 0-3 | column 4 of rows 0-3; u1: columns 1 and 5; ... */
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(u0, u4, 0x20), v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    v[2] = _mm256_permute2f128_ps(u2, u6, 0x20), v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    v[4] = _mm256_permute2f128_ps(u0, u4, 0x31), v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    v[6] = _mm256_permute2f128_ps(u2, u6, 0x31), v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dst[q*ld + r] = src[r*lds + q] for r, q < 8: an 8 x 8 block transposed. */
static void tsf__transpose8(float *dst, size_t ld, const float *src, size_t lds) {
    __m256 v[8]; /* written out, not in loops: then compilers keep v in registers */
    v[0] = _mm256_loadu_ps(src), v[1] = _mm256_loadu_ps(src + lds);
    v[2] = _mm256_loadu_ps(src + 2 * lds), v[3] = _mm256_loadu_ps(src + 3 * lds);
    v[4] = _mm256_loadu_ps(src + 4 * lds), v[5] = _mm256_loadu_ps(src + 5 * lds);
    v[6] = _mm256_loadu_ps(src + 6 * lds), v[7] = _mm256_loadu_ps(src + 7 * lds);
    tsf__transpose8_v(v);
    _mm256_storeu_ps(dst, v[0]), _mm256_storeu_ps(dst + ld, v[1]);
    _mm256_storeu_ps(dst + 2 * ld, v[2]), _mm256_storeu_ps(dst + 3 * ld, v[3]);
    _mm256_storeu_ps(dst + 4 * ld, v[4]), _mm256_storeu_ps(dst + 5 * ld, v[5]);
    _mm256_storeu_ps(dst + 6 * ld, v[6]), _mm256_storeu_ps(dst + 7 * ld, v[7]);
}

/* The same for a 4 x 4 block. */
static void tsf__transpose4(float *dst, size_t ld, const float *src, size_t lds) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + lds);
    __m128 r2 = _mm_loadu_ps(src + 2 * lds), r3 = _mm_loadu_ps(src + 3 * lds);
    __m128 t0 = _mm_unpacklo_ps(r0, r1), t1 = _mm_unpackhi_ps(r0, r1);
    __m128 t2 = _mm_unpacklo_ps(r2, r3), t3 = _mm_unpackhi_ps(r2, r3);
    _mm_storeu_ps(dst, _mm_movelh_ps(t0, t2));
    _mm_storeu_ps(dst + ld, _mm_movehl_ps(t2, t0));
    _mm_storeu_ps(dst + 2 * ld, _mm_movelh_ps(t1, t3));
    _mm_storeu_ps(dst + 3 * ld, _mm_movehl_ps(t3, t1));
}

/* dst[q*6 + r] = src[r*lds + q] for r < 6, q < 8: six rows of 8 transposed into 8 rows of 6,
   written one after another (48 floats: 8 steps of a 6-row panel, AVX2's MR): the 8 x 8
   transpose with two rows of zeros; each row of 8 is stored whole, the next overwriting
   its last two, the last one as 4 + 2. Before it, such a panel went four rows by 4 x 4 blocks
   and two a float at a time: ViT-B's products that pack A ran 3-4% slower with AVX2 (Zen 5). */
static void tsf__transpose6(float *dst, const float *src, size_t lds) {
    __m256 v[8];
    v[0] = _mm256_loadu_ps(src), v[1] = _mm256_loadu_ps(src + lds);
    v[2] = _mm256_loadu_ps(src + 2 * lds), v[3] = _mm256_loadu_ps(src + 3 * lds);
    v[4] = _mm256_loadu_ps(src + 4 * lds), v[5] = _mm256_loadu_ps(src + 5 * lds);
    v[6] = v[7] = _mm256_setzero_ps();
    tsf__transpose8_v(v);
    _mm256_storeu_ps(dst, v[0]), _mm256_storeu_ps(dst + 6, v[1]);
    _mm256_storeu_ps(dst + 12, v[2]), _mm256_storeu_ps(dst + 18, v[3]);
    _mm256_storeu_ps(dst + 24, v[4]), _mm256_storeu_ps(dst + 30, v[5]);
    _mm256_storeu_ps(dst + 36, v[6]);
    _mm_storeu_ps(dst + 42, _mm256_castps256_ps128(v[7]));
    _mm_storel_pi((__m64 *)(dst + 46), _mm256_extractf128_ps(v[7], 1));
}
#endif

/* dst[p*ld + j] = src[j*lds + p] for j < cols, p < kc: the transposing copy of packing. With
   AVX, 8 x 8 and 4 x 4 blocks (or a whole 6-row panel) transposed in registers; the rest, and
   other machines, four source rows at a time (four read streams, four adjacent writes). */
static void tsf__pack_transpose(float *dst, int ld, const float *src, size_t lds, int cols,
                                int kc) {
    int j = 0, p = 0, q;
#if defined(TSF__AVX512) || defined(TSF__AVX2)
    if (cols == 6 && ld == 6) { /* a whole panel of AVX2's kernel */
        for (; p + 8 <= kc; p += 8) tsf__transpose6(dst + (size_t)p * 6, src + p, lds);
        for (; p < kc; p++)
            for (q = 0; q < 6; q++) dst[(size_t)p * 6 + q] = src[(size_t)q * lds + p];
        return;
    }
    for (; j + 8 <= cols; j += 8) {
        for (p = 0; p + 8 <= kc; p += 8)
            tsf__transpose8(dst + (size_t)p * ld + j, (size_t)ld, src + (size_t)j * lds + p, lds);
        for (; p < kc; p++)
            for (q = 0; q < 8; q++) dst[(size_t)p * ld + j + q] = src[(size_t)(j + q) * lds + p];
    }
    for (; j + 4 <= cols; j += 4) {
        for (p = 0; p + 4 <= kc; p += 4)
            tsf__transpose4(dst + (size_t)p * ld + j, (size_t)ld, src + (size_t)j * lds + p, lds);
        for (; p < kc; p++)
            for (q = 0; q < 4; q++) dst[(size_t)p * ld + j + q] = src[(size_t)(j + q) * lds + p];
    }
#endif
    for (; j + 4 <= cols; j += 4) {
        const float *s0 = src + (size_t)j * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
        float *o = dst + j;
        for (p = 0; p < kc; p++, o += ld) o[0] = s0[p], o[1] = s1[p], o[2] = s2[p], o[3] = s3[p];
    }
    for (; j < cols; j++)
        for (p = 0; p < kc; p++) dst[(size_t)p * ld + j] = src[(size_t)j * lds + p];
    (void)q;
}

/* dst // (n) = src: a row of a panel. The sizes of the micro-kernels' panels are copies of
   constant size, which compilers make into a few vector moves instead of a call. */
static inline void tsf__copy_row(float *dst, const float *src, int n) {
    switch (n) {
    case 32:
        memcpy(dst, src, 32 * sizeof(float));
        break;
    case 16:
        memcpy(dst, src, 16 * sizeof(float));
        break;
    case 12:
        memcpy(dst, src, 12 * sizeof(float));
        break;
    case 8:
        memcpy(dst, src, 8 * sizeof(float));
        break;
    case 6: /* the AVX2 kernel's MR: the weight gradient's rows of A */
        memcpy(dst, src, 6 * sizeof(float));
        break;
    default:
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

/* Pack rows i0..i0+mr-1 (those below M are zero) and depth p0..p0+kc-1 of op(A) as a
   (kc, mr) panel. */
static void tsf__pack_a(float *dst, const tsf_matmul_desc *d, const float *A, int i0, int p0,
                        int kc, int mr) {
    int rows = tsf__min(mr, d->M - i0), i, p;
    if (!d->trans_a) /* A(i, p) = A[i*lda + p]: gather a column of each row */
        tsf__pack_transpose(dst, mr, A + (size_t)i0 * d->lda + p0, (size_t)d->lda, rows, kc);
    else /* A(i, p) = A[p*lda + i]: rows of the stored matrix are already panels */
        for (p = 0; p < kc; p++)
            tsf__copy_row(dst + (size_t)p * mr, A + (size_t)(p0 + p) * d->lda + i0, rows);
    for (p = 0; p < kc && rows < mr; p++)
        for (i = rows; i < mr; i++) dst[p * mr + i] = 0.0f;
}

/* Pack columns j0..j0+nc-1 and depth p0..p0+kc-1 of op(B) as panels of nr columns, each a
   (kc, nr) block; columns past N are zero. */
static void tsf__pack_b(float *dst, const tsf_matmul_desc *d, const float *B, int j0, int p0,
                        int kc, int nc, int nr) {
    int jp, j, p;
    for (jp = 0; jp < nc; jp += nr) {
        int cols = tsf__min(nr, d->N - (j0 + jp));
        float *panel = dst + (size_t)jp * kc;
        if (!d->trans_b) /* B(p, j) = B[p*ldb + j] */
            for (p = 0; p < kc; p++)
                tsf__copy_row(panel + (size_t)p * nr, B + (size_t)(p0 + p) * d->ldb + j0 + jp,
                              cols);
        else /* B(p, j) = B[j*ldb + p] */
            tsf__pack_transpose(panel, nr, B + (size_t)(j0 + jp) * d->ldb + p0, (size_t)d->ldb,
                                cols, kc);
        for (p = 0; p < kc && cols < nr; p++)
            for (j = cols; j < nr; j++) panel[p * nr + j] = 0.0f;
    }
}

/* c // (rows, cols) (row stride ldc) += bias // (cols) on every row, TSF__LANES columns at
   a time through a local copy of the bias (so that nothing aliases c). */
static void tsf__add_bias(float *c, int ldc, const float *bias, int rows, int cols) {
    float b[TSF__LANES];
    int i, j, u;
    for (j = 0; j + TSF__LANES <= cols; j += TSF__LANES) {
        memcpy(b, bias + j, sizeof b);
        for (i = 0; i < rows; i++)
            for (u = 0; u < TSF__LANES; u++) c[(size_t)i * ldc + j + u] += b[u];
    }
    for (; j < cols; j++)
        for (i = 0; i < rows; i++) c[(size_t)i * ldc + j] += bias[j];
}

/* Depth p0..p0+kc-1 of rows i0..i0+mc-1 and columns j0..j0+nc-1 of C: B's block packed (unless
   read in place, or packed already by this thread), then every row panel of op(A) times every
   panel of B. ab: the rows' panels of op(A) packed already (tsf__matmul_rows), or NULL: each
   panel is packed here (or read in place) in turn. bb: B's block packed already (its panel jr
   at bb + jr * kc), or NULL. */
static void tsf__matmul_block(const tsf_matmul_desc *d, const tsf__ukernel *uk, tsf__pack *pk,
                              const float *ab, const float *bb, const float *A, const float *B,
                              float *C, int i0, int mc, int j0, int nc, int p0, int kc) {
    const float *bpack;
    float *edge = pk->edge;
    int mr = uk->mr, nr = uk->nr, ir, jr, i, j, acc = d->accumulate || p0 > 0;
    int ncp = (nc + nr - 1) / nr * nr; /* nc rounded up to whole panels */
    int direct, direct_a = !ab && uk->fn_a &&
                           d->N <= (d->trans_a ? TSF__DIRECT_AT_MAX_N : TSF__DIRECT_A_MAX_N);
    size_t q;
    if (!bb && d->packed_b && uk == &tsf__ukernel_default) { /* all of B packed already */
        bb = d->packed_b + (size_t)p0 * ((d->N + nr - 1) / nr * nr) + (size_t)j0 * kc;
        /* The block comes from memory (packed weights are large), with the first row panel.
           Its lines are asked for all at once: with the kernel's loads alone, which wait for
           them in turn, ViT-B's forward pass was 2-5% slower at 1 thread and 4-7% at 2
           (tsf_model_pack_weights). Asking for the next block's lines a few at a time during
           this one's row panels instead gained nothing (0.99-1.03). */
        for (q = 0; q < (size_t)kc * ncp; q += 16) TSF__PREFETCH(bb + q);
    }
    bpack = bb ? bb : pk->b;
    direct = !bb && uk->direct_b && !d->trans_b &&
             (d->M <= TSF__DIRECT_B_MAX_M || (uk->direct_b > 1 && d->ldb <= nc));
    if (!bb && !direct &&
        !(pk->b_from == B && pk->b_j0 == j0 && pk->b_p0 == p0 && pk->b_nc == ncp &&
          pk->b_kc == kc)) { /* not packed already */
        tsf__pack_b(pk->b, d, B, j0, p0, kc, ncp, nr);
        pk->b_from = B, pk->b_j0 = j0, pk->b_p0 = p0, pk->b_nc = ncp, pk->b_kc = kc;
    }
    for (ir = 0; ir < mc; ir += mr) {
        int rows = tsf__min(mr, mc - ir);
        /* op(A)'s rows i0+ir.. at depth p0: in place, or packed (A is NULL where ab has them) */
        const float *a = !A           ? NULL
                         : d->trans_a ? A + (size_t)p0 * d->lda + i0 + ir
                                      : A + (size_t)(i0 + ir) * d->lda + p0;
        const float *apack = ab ? ab + (size_t)ir * kc : pk->a;
        size_t ars = d->trans_a ? 1 : (size_t)d->lda, aks = d->trans_a ? (size_t)d->lda : 1;
        if (!ab && !direct_a) tsf__pack_a(pk->a, d, A, i0 + ir, p0, kc, mr);
        for (jr = 0; jr < nc; jr += nr) {
            int cols = tsf__min(nr, nc - jr);
            float *c = C + (size_t)(i0 + ir) * d->ldc + j0 + jr;
            const float *b = direct ? B + (size_t)p0 * d->ldb + j0 + jr : bpack + (size_t)jr * kc;
            size_t ldb = direct ? (size_t)d->ldb : (size_t)nr;
            if (direct_a) { /* with the bias in the first block's sums */
                const float *bias = d->bias && p0 == 0 ? d->bias + j0 + jr : NULL;
                uk->fn_a(kc, a, ars, aks, b, ldb, bias, c, (size_t)d->ldc, acc, rows, cols);
            } else if (uk->partial || (rows == mr && cols == nr)) {
                uk->fn(kc, apack, b, ldb, c, (size_t)d->ldc, acc, rows, cols);
            } else { /* a partial tile goes through a full-size scratch tile */
                for (i = 0; i < mr; i++)
                    for (j = 0; j < nr; j++)
                        edge[i * nr + j] = acc && i < rows && j < cols ? c[i * d->ldc + j] : 0.0f;
                uk->fn(kc, apack, b, ldb, edge, (size_t)nr, 1, mr, nr);
                for (i = 0; i < rows; i++)
                    for (j = 0; j < cols; j++) c[i * d->ldc + j] = edge[i * nr + j];
            }
        }
        /* the row panel is done: its bias, once the kernel's stores of all its tiles are on
           their way to the cache (right after each tile, the loads would wait for its masked
           stores, which cannot be forwarded: 3.7% of the small model's inference) */
        if (d->bias && !direct_a && p0 + kc == d->K)
            tsf__add_bias(C + (size_t)(i0 + ir) * d->ldc + j0, d->ldc, d->bias + j0, rows, nc);
    }
}

/* One task: rows i0..i0+mc-1 and columns j0..j0+nc-1 of C, over all of K. */
static void tsf__matmul_task(const tsf_matmul_desc *d, const tsf__ukernel *uk, tsf__pack *pk,
                             const float *A, const float *B, float *C, int i0, int mc, int j0,
                             int nc) {
    int p0, i;
    if (d->K == 0) { /* empty sum: C = 0, or C unchanged */
        for (i = 0; i < mc && !d->accumulate; i++)
            memset(C + (size_t)(i0 + i) * d->ldc + j0, 0, (size_t)nc * sizeof(float));
        if (d->bias) tsf__add_bias(C + (size_t)i0 * d->ldc + j0, d->ldc, d->bias + j0, mc, nc);
        return;
    }
    if (uk->dot && d->trans_b && !d->trans_a && d->N <= 16) {
        uk->dot(mc, nc, d->K, A + (size_t)i0 * d->lda, (size_t)d->lda, B + (size_t)j0 * d->ldb,
                (size_t)d->ldb, C + (size_t)i0 * d->ldc + j0, (size_t)d->ldc, d->accumulate);
        if (d->bias) tsf__add_bias(C + (size_t)i0 * d->ldc + j0, d->ldc, d->bias + j0, mc, nc);
        return;
    }
    for (p0 = 0; p0 < d->K; p0 += TSF_MM_KC)
        tsf__matmul_block(d, uk, pk, NULL, NULL, A, B, C, i0, mc, j0, nc, p0,
                          tsf__min(TSF_MM_KC, d->K - p0));
}

/* Rows i0..i0+mc-1 of C, all its columns (blocks of ncb), K > 0, with op(A)'s panels of these
   rows packed into ab once for each block of K, for all the column blocks (tsf__matmul_task
   packs them again for each). Every element's sum runs as in tsf__matmul_task: the same
   bits. */
static void tsf__matmul_rows(const tsf_matmul_desc *d, const tsf__ukernel *uk, tsf__pack *pk,
                             float *ab, const float *A, const float *B, float *C, int i0, int mc,
                             int ncb) {
    int p0, ir, j0;
    for (p0 = 0; p0 < d->K; p0 += TSF_MM_KC) {
        int kc = tsf__min(TSF_MM_KC, d->K - p0);
        for (ir = 0; ir < mc; ir += uk->mr) /* panel ir / mr: (kc, mr) at ab + ir * kc */
            tsf__pack_a(ab + (size_t)ir * kc, d, A, i0 + ir, p0, kc, uk->mr);
        for (j0 = 0; j0 < d->N; j0 += ncb)
            tsf__matmul_block(d, uk, pk, ab, NULL, A, B, C, i0, mc, j0, tsf__min(ncb, d->N - j0),
                              p0, kc);
    }
}

TSFDEF size_t tsf_matmul_packed_b_floats(int N, int K) {
    int nr = tsf__ukernel_default.nr;
    return N > 0 && K > 0 ? (size_t)((N + nr - 1) / nr * nr) * (size_t)K : 0;
}

/* Block p0 of depth (kc deep) of the packed B starts at p0 * Np (Np = N in whole panels),
   and its panel of columns j.. at j * kc after that: where tsf__matmul_block looks. Tasks:
   a block of depth by cw columns (whole panels) each, disjoint. */
TSFDEF void tsf_matmul_pack_b(float *packed, const tsf_matmul_desc *desc) {
    tsf_matmul_desc d = *desc;
    int nr = tsf__ukernel_default.nr, Np = (d.N + nr - 1) / nr * nr, nb;
    int cw = TSF_MM_NC >= nr ? TSF_MM_NC / nr * nr : nr;
    long t, tasks;
    if (d.N <= 0 || d.K <= 0) return;
    if (d.ldb == 0) d.ldb = d.trans_b ? d.K : d.N;
    nb = (Np + cw - 1) / cw;
    tasks = (long)nb * ((d.K + TSF_MM_KC - 1) / TSF_MM_KC);
    TSF__OMP_FOR((double)Np * d.K > TSF__PAR_WORK)
    for (t = 0; t < tasks; t++) {
        int p0 = (int)(t / nb) * TSF_MM_KC, j0 = (int)(t % nb) * cw;
        int kc = tsf__min(TSF_MM_KC, d.K - p0), nc = tsf__min(cw, Np - j0);
        tsf__pack_b(packed + (size_t)p0 * Np + (size_t)j0 * kc, &d, d.B, j0, p0, kc, nc, nr);
    }
}

TSFDEF size_t tsf_matmul_work_floats(int threads) {
    return (size_t)(threads > 0 ? threads : 1) * tsf__work_slot(TSF_MM_MC);
}

/* Item (s, g) of a batched product (sequence s, head g): its A, B and C. */
static void tsf__matmul_item_at(const tsf_matmul_desc *d, long s, long g, const float **A,
                                const float **B, float **C) {
    *A = d->A + (size_t)s * d->stride_a + (size_t)g * d->group_stride_a;
    *B = d->B + (size_t)s * d->stride_b + (size_t)g * d->group_stride_b;
    *C = d->C + (size_t)s * d->stride_c + (size_t)g * d->group_stride_c;
}
/* Item `item` of a batched product (sequence item / group, head item % group; d->group set). */
static void tsf__matmul_item(const tsf_matmul_desc *d, long item, const float **A, const float **B,
                             float **C) {
    tsf__matmul_item_at(d, item / d->group, item % d->group, A, B, C);
}

/* The driver with work space (d->work) for C of several column blocks (nc wide): units of
   work are an item's row groups, all columns each (tsf__matmul_rows), dealt out to whichever
   thread is free. Each group packs B once more, so they are few: at most TSF_MM_MC rows each,
   and for one product a multiple of the threads (two each where that leaves 256 rows a
   group), but at least TSF__MM_MIN_ROWS rows. A thread past the work space's slots runs its
   units as tasks (the same bits). tsf__matmul_units is thread th's part, of nth threads: the
   units it takes from *next (shared) until none is left. */
static void tsf__matmul_units(const tsf_matmul_desc *d, const tsf__ukernel *uk, long items, int nc,
                              long th, long nth, long *next) {
    tsf__pack pk;
    long g = (d->M + TSF_MM_MC - 1) / TSF_MM_MC, u; /* row groups per item */
    int mcg;
    size_t slot = tsf__work_slot(d->M);
    float *ab = (size_t)(th + 1) * slot <= d->work_floats ? d->work + (size_t)th * slot : NULL;
    if (items == 1 && nth > 1) { /* one product: the same share for every thread */
        g = (g + nth - 1) / nth * nth;
        if (g < 2 * nth && d->M / (2 * nth) >= 256) g = 2 * nth; /* two: room to balance */
    } else if (items < nth) { /* a few products: enough groups for the threads */
        g = (nth + items - 1) / items;
    }
    if (g > 1 && d->M / g < TSF__MM_MIN_ROWS)
        g = d->M / TSF__MM_MIN_ROWS > 1 ? d->M / TSF__MM_MIN_ROWS : 1;
    mcg = (int)((d->M + g - 1) / g + uk->mr - 1) / uk->mr * uk->mr;
    g = (d->M + mcg - 1) / mcg;
    pk.b_from = NULL;
    for (;;) { /* the next unit not taken */
        int i0, rows, j0;
        const float *A, *B;
        float *C;
        TSF__OMP_ATOMIC_CAPTURE
        u = (*next)++;
        if (u >= items * g) break;
        i0 = (int)(u % g) * mcg, rows = tsf__min(mcg, d->M - i0);
        tsf__matmul_item(d, u / g, &A, &B, &C);
        if (ab)
            tsf__matmul_rows(d, uk, &pk, ab, A, B, C, i0, rows, nc);
        else
            for (j0 = 0; j0 < d->N; j0 += nc)
                tsf__matmul_task(d, uk, &pk, A, B, C, i0, rows, j0, tsf__min(nc, d->N - j0));
    }
}
static void tsf__matmul_by_rows(const tsf_matmul_desc *d, const tsf__ukernel *uk, long items,
                                int nc) {
    long next = 0; /* the units taken so far */
    if ((double)items * d->M * d->N * (d->K + 1) > TSF__PAR_MM_WORK &&
        (items > 1 || d->M >= 2 * TSF__MM_MIN_ROWS) && TSF__OMP_SPLITS()) {
        TSF__OMP_PARALLEL(1)
        tsf__matmul_units(d, uk, items, nc, TSF__OMP_THREAD(), TSF__OMP_THREADS(), &next);
    } else {
        tsf__matmul_units(d, uk, items, nc, 0, 1, &next);
    }
}

/* Whether each product of a batch is small enough for tsf__matmul_small: few rows (B read in
   place), one block of K and one of columns, and op(A) read in place too (the dot kernel
   where B is transposed and C has at most 16 columns, else fn_a), as tsf__matmul_task would
   read them. */
static int tsf__matmul_is_small(const tsf_matmul_desc *d, const tsf__ukernel *uk) {
    if (d->M > TSF__DIRECT_B_MAX_M || d->K == 0 || d->K > TSF_MM_KC || d->N > TSF_MM_NC) return 0;
    if (d->trans_b) return uk->dot && !d->trans_a && d->N <= 16;
    return uk->fn_a && uk->direct_b &&
           d->N <= (d->trans_a ? TSF__DIRECT_AT_MAX_N : TSF__DIRECT_A_MAX_N);
}

/* Ask for the stored rows of A and B of item (s, g) of a batch: every cache line of each
   (16 floats apart, and the row's last). */
static void tsf__prefetch_item(const tsf_matmul_desc *d, long s, long g) {
    const float *A, *B;
    float *C;
    int r, q, ar = d->trans_a ? d->K : d->M, ac = d->trans_a ? d->M : d->K;
    int br = d->trans_b ? d->N : d->K, bc = d->trans_b ? d->K : d->N;
    tsf__matmul_item_at(d, s, g, &A, &B, &C);
    for (r = 0; r < ar; r++) {
        for (q = 0; q < ac; q += 16) TSF__PREFETCH(A + (size_t)r * d->lda + q);
        TSF__PREFETCH(A + (size_t)r * d->lda + ac - 1);
    }
    for (r = 0; r < br; r++) {
        for (q = 0; q < bc; q += 16) TSF__PREFETCH(B + (size_t)r * d->ldb + q);
        TSF__PREFETCH(B + (size_t)r * d->ldb + bc - 1);
    }
}

/* A batch of small products (the temporal attention's 8 x 8 x 64 and 8 x 64 x 8, 2352 of
   them in ViT-B's): each item straight to the kernel calls that tsf__matmul_task would make,
   in the same order (the same bits), without its bookkeeping per item (divisions, tasks,
   flags): 8 x 64 x 8 took 100 instead of 160 ns an item on a Zen 5 (calling tsf__matmul_task
   for each item instead, the flags alone, cost it another 15-20%). While an item runs, the
   next item's operands are asked for (where they take at most 16 KB): 8 x 64 x 8 another
   7-9% faster, 8 x 8 x 64 10-12% in one sitting, no change either way in another whose
   operands came slower from memory (nor asking 2, 4 or 8 items ahead); asking for the next
   C too made both slower. Each thread
   takes one contiguous share of the items, the same at every call: its operands stay in its
   core's caches from one call to the next (shares dealt out dynamically made 2 threads
   slower than 1 on the same Zen 5). */
static void tsf__matmul_share(const tsf_matmul_desc *desc, const tsf__ukernel *uk, long items,
                              long th, long nth) { /* thread th's share, of nth threads */
    const tsf_matmul_desc dl = *desc, *d = &dl;    /* the thread's copy: kept in registers */
    long it = items * th / nth, end = items * (th + 1) / nth, s = it / d->group, g = it % d->group;
    size_t ars = d->trans_a ? 1 : (size_t)d->lda, aks = d->trans_a ? (size_t)d->lda : 1;
    int i, j, pre = (d->M + d->N) * d->K <= 4096; /* the next item's operands: 16 KB */
    for (; it < end; it++) {
        const float *A, *B;
        float *C;
        tsf__matmul_item_at(d, s, g, &A, &B, &C);
        if (++g == d->group) g = 0, s++;
        if (pre && it + 1 < end) tsf__prefetch_item(d, s, g);
        if (d->trans_b) {
            uk->dot(d->M, d->N, d->K, A, (size_t)d->lda, B, (size_t)d->ldb, C, (size_t)d->ldc,
                    d->accumulate);
            if (d->bias) tsf__add_bias(C, d->ldc, d->bias, d->M, d->N);
            continue;
        }
        for (i = 0; i < d->M; i += uk->mr) /* row panels, then their tiles */
            for (j = 0; j < d->N; j += uk->nr)
                uk->fn_a(d->K, A + (size_t)i * ars, ars, aks, B + j, (size_t)d->ldb,
                         d->bias ? d->bias + j : NULL, C + (size_t)i * d->ldc + j, (size_t)d->ldc,
                         d->accumulate, tsf__min(uk->mr, d->M - i), tsf__min(uk->nr, d->N - j));
    }
}
static void tsf__matmul_small(const tsf_matmul_desc *d, const tsf__ukernel *uk, long items) {
    if ((double)items * d->M * d->N * (d->K + 1) > TSF__PAR_MM_WORK && TSF__OMP_SPLITS()) {
        TSF__OMP_PARALLEL(1)
        tsf__matmul_share(d, uk, items, TSF__OMP_THREAD(), TSF__OMP_THREADS());
    } else {
        tsf__matmul_share(d, uk, items, 0, 1);
    }
}

/* A thread's part of tsf__matmul_with's tasks (rows fastest, then column blocks, then items;
   mt x nt tasks of mc rows and nc columns an item), cut into nch contiguous chunks: the chunks
   it takes from *next (shared) until none is left. In a chunk, the tasks of one column block
   run as one task over all their rows. */
static void tsf__matmul_chunks(const tsf_matmul_desc *d, const tsf__ukernel *uk, long tasks,
                               long nch, int mt, int mc, int nt, int nc, long *next) {
    tsf__pack pk; /* the block of B it packed stays for its next task */
    long c, t, end, run;
    pk.b_from = NULL;
    for (;;) {
        TSF__OMP_ATOMIC_CAPTURE
        c = (*next)++;
        if (c >= nch) break;
        for (t = c * tasks / nch, end = (c + 1) * tasks / nch; t < end; t += run) {
            int tile = (int)(t % ((long)mt * nt)), i0 = tile % mt * mc, j0 = tile / mt * nc;
            const float *A, *B;
            float *C;
            tsf__matmul_item(d, t / ((long)mt * nt), &A, &B, &C);
            run = end - t < mt - tile % mt ? end - t : mt - tile % mt; /* this block's */
            tsf__matmul_task(d, uk, &pk, A, B, C, i0, tsf__min((int)run * mc, d->M - i0), j0,
                             tsf__min(nc, d->N - j0));
        }
    }
}

/* The matmul driver, with the micro-kernel as an argument so the tests can run the portable
   kernel beside the SIMD one in one binary. */
static void tsf__matmul_with(const tsf_matmul_desc *desc, const tsf__ukernel *uk) {
    tsf_matmul_desc d = *desc;
    int count, group, mc, mt, nc, nt;
    long tasks, chunks, items, next;
    TSF_ASSERT(d.M >= 0 && d.N >= 0 && d.K >= 0 && d.C != NULL);
    if (d.lda == 0) d.lda = d.trans_a ? d.M : d.K;
    if (d.ldb == 0) d.ldb = d.trans_b ? d.K : d.N;
    if (d.ldc == 0) d.ldc = d.N;
    count = d.count = d.count > 0 ? d.count : 1; /* (tsf__matmul_item reads d.group) */
    group = d.group = d.group > 0 ? d.group : 1;
    if (d.M == 0 || d.N == 0) return;
    /* Columns: blocks of equal width (whole panels), at most TSF_MM_NC wide. Rows: as few
       groups (of TSF__MM_MIN_ROWS to TSF_MM_MC rows) as make TSF__MM_TASKS tasks in all, so
       that a task's packed block of B serves as many rows as possible. The cut depends on the shape
       alone (no result depends on it anyway: every element's sum runs in the same order). */
    items = (long)count * group;
    if (items > 1) d.packed_b = NULL; /* one product's B (tsf_matmul_pack_b) */
    if (items > 1 && tsf__matmul_is_small(&d, uk)) {
        tsf__matmul_small(&d, uk, items);
        return;
    }
    nt = (d.N + TSF_MM_NC - 1) / TSF_MM_NC;
    nc = ((d.N + nt - 1) / nt + uk->nr - 1) / uk->nr * uk->nr;
    nt = (d.N + nc - 1) / nc;
    if (d.work && d.work_floats >= tsf__work_slot(d.M) && nt > 1 && d.K > 0) {
        tsf__matmul_by_rows(&d, uk, items, nc);
        return;
    }
    mt = (int)((TSF__MM_TASKS + items * nt - 1) / (items * nt));
    mt = tsf__min(mt, (d.M + TSF__MM_MIN_ROWS - 1) / TSF__MM_MIN_ROWS);
    if (mt < (d.M + TSF_MM_MC - 1) / TSF_MM_MC) mt = (d.M + TSF_MM_MC - 1) / TSF_MM_MC;
    mc = ((d.M + mt - 1) / mt + uk->mr - 1) / uk->mr * uk->mr;
    mt = (d.M + mc - 1) / mc;
    tasks = items * mt * nt;
    /* Tasks (rows fastest, then column blocks, then items) are dealt out in at most 64
       contiguous chunks to whichever thread is free (a core shared with another program does
       less); a single thread takes them all as one chunk. In a chunk, the tasks of one
       column block run as one task over all their rows (the rows' cut changes no result), so
       a block of B is packed once for all of them, not once for each: a thread's packing
       space holds one block of K (TSF_MM_KC) of it, which a next task would pack again. That
       space lives for the whole product, so where a block of B is all of K (K <= TSF_MM_KC:
       the small model's layers) the thread packs it once for all its tasks of that column
       block. */
    chunks = tasks < 64 ? tasks : 64, next = 0;
    if ((double)count * group * d.M * d.N * (d.K + 1) > TSF__PAR_MM_WORK && chunks > 1 &&
        TSF__OMP_SPLITS()) {
        TSF__OMP_PARALLEL(1)
        tsf__matmul_chunks(&d, uk, tasks, TSF__OMP_THREADS() > 1 ? chunks : 1, mt, mc, nt, nc,
                           &next);
    } else {
        tsf__matmul_chunks(&d, uk, tasks, 1, mt, mc, nt, nc, &next);
    }
}

TSFDEF void tsf_matmul(const tsf_matmul_desc *d) { tsf__matmul_with(d, &tsf__ukernel_default); }

TSFDEF void tsf_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_w(C, A, B, M, N, K, 0, 1, accumulate, NULL, tsf__no_work);
}
TSFDEF void tsf_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_w(C, A, B, M, N, K, 0, 0, accumulate, NULL, tsf__no_work);
}
TSFDEF void tsf_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_w(C, A, B, M, N, K, 1, 0, accumulate, NULL, tsf__no_work);
}

/* C // (M, N) (+)= op(A) . op(B), one product on the calling thread with its own packing
   space: the small products of an attention tile, inside a parallel loop. Strides as in
   tsf_matmul_desc; the sums run as tsf_matmul's do. */
static void tsf__matmul_serial(tsf__pack *pk, float *C, int ldc, const float *A, int lda,
                               int trans_a, const float *B, int ldb, int trans_b, int M, int N,
                               int K, int accumulate) {
    tsf_matmul_desc d;
    int j0;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.lda = lda, d.trans_a = trans_a;
    d.B = B, d.ldb = ldb, d.trans_b = trans_b;
    d.C = C, d.ldc = ldc, d.accumulate = accumulate;
    pk->b_from = NULL; /* another product: what pk->b holds is not this B's */
    for (j0 = 0; j0 < N; j0 += TSF_MM_NC)
        tsf__matmul_task(&d, &tsf__ukernel_default, pk, A, B, C, 0, M, j0,
                         tsf__min(TSF_MM_NC, N - j0));
}

/* The default kernel's panels: mr rows of op(A), nr columns of op(B). */
static void tsf__panel_sizes(int *mr, int *nr) {
    *mr = tsf__ukernel_default.mr, *nr = tsf__ukernel_default.nr;
}
/* X // (n, K), row stride ldx, as op(A)'s row panels of the default kernel (tsf__pack_a's
   layout: panel r / mr at dst + r * K; n rounded up to whole panels, padded with zeros),
   K <= TSF_MM_KC. */
static void tsf__pack_rows(float *dst, const float *X, int ldx, int n, int K) {
    tsf_matmul_desc d;
    int i, mr = tsf__ukernel_default.mr;
    memset(&d, 0, sizeof d);
    d.M = n, d.K = K, d.lda = ldx;
    for (i = 0; i < n; i += mr) tsf__pack_a(dst + (size_t)i * K, &d, X, i, 0, K, mr);
}
/* X // (n, K), row stride ldx, as op(B) = X^T: column panels of the default kernel (tsf__pack_b's
   layout: the panel of columns j.. at dst + j * K; n rounded up, zeros), K <= TSF_MM_KC. */
static void tsf__pack_cols_t(float *dst, const float *X, int ldx, int n, int K) {
    tsf_matmul_desc d;
    int nr = tsf__ukernel_default.nr;
    memset(&d, 0, sizeof d);
    d.N = n, d.K = K, d.ldb = ldx, d.trans_b = 1;
    tsf__pack_b(dst, &d, X, 0, 0, K, (n + nr - 1) / nr * nr, nr);
}
/* C // (M, N), row stride ldc, = a . b from panels packed already: a, M rows by
   tsf__pack_rows; b, the panel of C's first column (packed by tsf__pack_cols_t, its first column
   a multiple of nr). K <= TSF_MM_KC. The same bits as tsf__matmul_serial on the unpacked
   operands: the same kernel over the same depth. Returns 0, doing nothing, where that takes
   the dot-product kernel instead (N <= 16): the caller then calls it. */
static int tsf__matmul_panels(tsf__pack *pk, float *C, int ldc, const float *a, const float *b,
                              int M, int N, int K) {
    const tsf__ukernel *uk = &tsf__ukernel_default;
    tsf_matmul_desc d;
    if ((uk->dot && N <= 16) || K > TSF_MM_KC) return 0;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K, d.trans_b = 1, d.C = C, d.ldc = ldc;
    tsf__matmul_block(&d, uk, pk, a, b, NULL, NULL, C, 0, M, 0, N, 0, K);
    return 1;
}

/* ==========================================================================================
   NUMERIC MACHINERY: exp and erf that compilers vectorise
   GELU and the fused attention's softmax spend their time in erf and exp. libm's erff and
   expf are calls, which no compiler vectorises; these are arithmetic and bit operations
   without a branch, which gcc and clang run 4, 8 or 16 at a time (SSE2, NEON, AVX2,
   AVX-512) when a loop feeds them 16 values through a local array (TSF__LANES), as the
   kernels do. Accuracy: exp within 3e-7 relative, GELU within 4e-7 (absolute, and
   relative on its negative tail). They rely on IEEE arithmetic: no -ffast-math.
   ========================================================================================== */

/* exp(x): 0 below -87.3, inf above 88.7, NaN for NaN. x = k ln2 + r with |r| <= ln2/2,
   exp(r) by its Taylor series to r^6, 2^k written into the exponent bits. */
static inline float tsf__expf(float x) {
    tsf__bits t, two, y;
    float k, r, p;
    t.f = x * 1.44269504088896341f;              /* x / ln 2, kept within [-126, 127]: */
    t.i = t.i > 0x42FE0000 ? 0x42FE0000 : t.i;   /* as ints, floats above 127 (and NaN) */
    t.u = t.u > 0xC2FC0000u ? 0xC2FC0000u : t.u; /* as unsigned, floats below -126       */
    k = (t.f + 12582912.0f) - 12582912.0f;       /* rounded to an integer (1.5 * 2^23)   */
    r = TSF__MADD(-k, 0.693145751953125f, x);    /* x - k ln 2, ln 2 in two parts */
    r = TSF__MADD(-k, 1.428606765330187e-06f, r);
    p = TSF__MADD(1.0f / 720.0f, r, 1.0f / 120.0f); /* Horner */
    p = TSF__MADD(p, r, 1.0f / 24.0f);
    p = TSF__MADD(p, r, 1.0f / 6.0f);
    p = TSF__MADD(p, r, 0.5f);
    p = TSF__MADD(p, r, 1.0f);
    p = TSF__MADD(p, r, 1.0f);
    two.i = ((int32_t)k + 127) << 23; /* 2^k */
    y.f = p * two.f;
    y.i &= -(int32_t) !(x < -87.0f); /* 0 where 2^k would leave the normal range */
    return y.f;
}

/* 1 + erf(x / sqrt 2), from erfc's Chebyshev fit (Numerical Recipes' erfcc, relative error
   below 1.2e-7 for every z >= 0): erfc(|z|) itself for x < 0, so GELU's negative tail keeps
   its relative accuracy, and 2 - erfc(z) otherwise. */
static inline float tsf__one_plus_erf(float x) {
    float z = fabsf(x) * TSF__SQRT1_2, t = 1.0f / TSF__MADD(0.5f, z, 1.0f), e, p;
    p = TSF__MADD(t, 0.17087277f, -0.82215223f); /* Horner, from the highest power of t */
    p = TSF__MADD(p, t, 1.48851587f);
    p = TSF__MADD(p, t, -1.13520398f);
    p = TSF__MADD(p, t, 0.27886807f);
    p = TSF__MADD(p, t, -0.18628806f);
    p = TSF__MADD(p, t, 0.09678418f);
    p = TSF__MADD(p, t, 0.37409196f);
    p = TSF__MADD(p, t, 1.00002368f);
    p = TSF__MADD(p, t, -1.26551223f);
    e = t * tsf__expf(TSF__MADD(-z, z, p));
    return tsf__select(x < 0.0f, e, 2.0f - e);
}

#if defined(TSF__AVX512) || defined(TSF__AVX2)
/* ---- the same on whole vectors --------------------------------------------------------------
   GELU with its derivative is two exps, a division and an erf polynomial: about 40 dependent
   operations a value. Written as loops over local arrays (above), compilers run one such chain
   at a time per vector and keep the arrays in memory; the core's scheduler then holds too few
   independent operations to fill its units. Here TSF__VN vectors go through each step side by
   side in registers: GELU and its derivative 1.6x as fast with AVX2, 1.3x with AVX-512, and
   fast whatever the compiler decides to inline (the loops above vectorise only when it inlines
   tsf__one_plus_erf). The operations are those of tsf__expf and tsf__one_plus_erf, in the
   same order, so the results are the same bits. tsf__vf is a vector of TSF__VL floats; a few
   helpers differ between AVX-512 (masks) and AVX2 (masks as vectors). */
#if defined(TSF__AVX512)
TSF__FORCE_INLINE tsf__vi tsf__v_bits(tsf__vf x) { return _mm512_castps_si512(x); }
TSF__FORCE_INLINE tsf__vf tsf__v_float(tsf__vi x) { return _mm512_castsi512_ps(x); }
TSF__FORCE_INLINE tsf__vf tsf__v_abs(tsf__vf x) { /* the sign bit cleared */
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}
/* min(b, 0x42FE0000) as ints, then min(that, 0xC2FC0000) as unsigned ints (full-mask forms:
   the plain intrinsics start from an undefined vector, which g++ warns about) */
TSF__FORCE_INLINE tsf__vi tsf__v_clamp(tsf__vi b) {
    b = _mm512_maskz_min_epi32((__mmask16)0xFFFF, b, _mm512_set1_epi32(0x42FE0000));
    return _mm512_maskz_min_epu32((__mmask16)0xFFFF, b, _mm512_set1_epi32((int32_t)0xC2FC0000u));
}
TSF__FORCE_INLINE tsf__vf tsf__v_pow2(tsf__vf k) { /* 2^k for integral k in [-126, 127] */
    tsf__vi b = _mm512_maskz_cvttps_epi32((__mmask16)0xFFFF, k);
    b = _mm512_add_epi32(b, _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32((__mmask16)0xFFFF, b, 23));
}
TSF__FORCE_INLINE tsf__vf tsf__v_zero_below(tsf__vf y, tsf__vf x, float c) { /* x < c ? 0 : y */
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(c), _CMP_NLT_UQ), y);
}
TSF__FORCE_INLINE tsf__vf tsf__v_if_neg(tsf__vf x, tsf__vf a, tsf__vf b) { /* x < 0 ? a : b */
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), b, a);
}
#else
TSF__FORCE_INLINE tsf__vi tsf__v_bits(tsf__vf x) { return _mm256_castps_si256(x); }
TSF__FORCE_INLINE tsf__vf tsf__v_float(tsf__vi x) { return _mm256_castsi256_ps(x); }
TSF__FORCE_INLINE tsf__vf tsf__v_abs(tsf__vf x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}
TSF__FORCE_INLINE tsf__vi tsf__v_clamp(tsf__vi b) {
    b = _mm256_min_epi32(b, _mm256_set1_epi32(0x42FE0000));
    return _mm256_min_epu32(b, _mm256_set1_epi32((int32_t)0xC2FC0000u));
}
TSF__FORCE_INLINE tsf__vf tsf__v_pow2(tsf__vf k) {
    tsf__vi b = _mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(b, 23));
}
TSF__FORCE_INLINE tsf__vf tsf__v_zero_below(tsf__vf y, tsf__vf x, float c) {
    return _mm256_and_ps(y, _mm256_cmp_ps(x, _mm256_set1_ps(c), _CMP_NLT_UQ));
}
TSF__FORCE_INLINE tsf__vf tsf__v_if_neg(tsf__vf x, tsf__vf a, tsf__vf b) {
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}
#endif
#define TSF__VC(c) TSF__V(set1_ps)(c)
/* S for each of the TSF__VN vectors, u = 0, 1, ...: constant indices, so the arrays of
   vectors below live in registers. */
#define TSF__EACH(S)                                                                               \
    do {                                                                                           \
        u = 0, S;                                                                                  \
        u = 1, S;                                                                                  \
        u = 2, S;                                                                                  \
        u = 3, S;                                                                                  \
    } while (0)

/* y[u] = tsf__expf(x[u]); y may be x. */
TSF__FORCE_INLINE void tsf__v_expf(tsf__vf *y, const tsf__vf *x) {
    tsf__vf k[TSF__VN], r[TSF__VN], p[TSF__VN];
    tsf__vi b[TSF__VN];
    int u;
    TSF__EACH(b[u] = tsf__v_bits(TSF__V(mul_ps)(x[u], TSF__VC(1.44269504088896341f))));
    TSF__EACH(b[u] = tsf__v_clamp(b[u]));
    TSF__EACH(k[u] = TSF__V(add_ps)(tsf__v_float(b[u]), TSF__VC(12582912.0f)));
    TSF__EACH(k[u] = TSF__V(sub_ps)(k[u], TSF__VC(12582912.0f)));
    TSF__EACH(r[u] = TSF__V(fnmadd_ps)(k[u], TSF__VC(0.693145751953125f), x[u]));
    TSF__EACH(r[u] = TSF__V(fnmadd_ps)(k[u], TSF__VC(1.428606765330187e-06f), r[u]));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(TSF__VC(1.0f / 720.0f), r[u], TSF__VC(1.0f / 120.0f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], r[u], TSF__VC(1.0f / 24.0f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], r[u], TSF__VC(1.0f / 6.0f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], r[u], TSF__VC(0.5f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], r[u], TSF__VC(1.0f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], r[u], TSF__VC(1.0f)));
    TSF__EACH(p[u] = TSF__V(mul_ps)(p[u], tsf__v_pow2(k[u])));
    TSF__EACH(y[u] = tsf__v_zero_below(p[u], x[u], -87.0f));
}

/* e[u] = tsf__one_plus_erf(x[u]). */
TSF__FORCE_INLINE void tsf__v_one_plus_erf(tsf__vf *e, const tsf__vf *x) {
    tsf__vf z[TSF__VN], t[TSF__VN], p[TSF__VN];
    int u;
    TSF__EACH(z[u] = TSF__V(mul_ps)(tsf__v_abs(x[u]), TSF__VC(TSF__SQRT1_2)));
    TSF__EACH(
        t[u] = TSF__V(div_ps)(TSF__VC(1.0f), TSF__V(fmadd_ps)(TSF__VC(0.5f), z[u], TSF__VC(1.0f))));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(t[u], TSF__VC(0.17087277f), TSF__VC(-0.82215223f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(1.48851587f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(-1.13520398f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(0.27886807f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(-0.18628806f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(0.09678418f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(0.37409196f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(1.00002368f)));
    TSF__EACH(p[u] = TSF__V(fmadd_ps)(p[u], t[u], TSF__VC(-1.26551223f)));
    TSF__EACH(p[u] = TSF__V(fnmadd_ps)(z[u], z[u], p[u]));
    tsf__v_expf(p, p);
    TSF__EACH(p[u] = TSF__V(mul_ps)(t[u], p[u]));
    TSF__EACH(e[u] = tsf__v_if_neg(x[u], p[u], TSF__V(sub_ps)(TSF__VC(2.0f), p[u])));
}

/* g[u] = tsf__gelu_grad_from(x[u], e[u]); g may be e. */
TSF__FORCE_INLINE void tsf__v_gelu_grad_from(tsf__vf *g, const tsf__vf *x, const tsf__vf *e) {
    tsf__vf h[TSF__VN];
    int u;
    TSF__EACH(h[u] = TSF__V(mul_ps)(TSF__V(mul_ps)(TSF__VC(-0.5f), x[u]), x[u]));
    tsf__v_expf(h, h);
    TSF__EACH(h[u] = TSF__V(mul_ps)(TSF__V(mul_ps)(x[u], TSF__VC(TSF__INV_SQRT_2PI)), h[u]));
    TSF__EACH(g[u] = TSF__V(fmadd_ps)(TSF__VC(0.5f), e[u], h[u]));
}

/* tsf__gelu_n and tsf__gelu_grad_n (which see) for n a multiple of TSF__VW. */
static void tsf__v_gelu(float *out, float *dgelu, const float *inp, int n) {
    tsf__vf x[TSF__VN], e[TSF__VN];
    int j, u;
    for (j = 0; j < n; j += TSF__VW) {
        TSF__EACH(x[u] = TSF__V(loadu_ps)(inp + j + u * TSF__VL));
        tsf__v_one_plus_erf(e, x);
        TSF__EACH(TSF__V(storeu_ps)(out + j + u * TSF__VL,
                                    TSF__V(mul_ps)(TSF__V(mul_ps)(TSF__VC(0.5f), x[u]), e[u])));
        if (!dgelu) continue;
        tsf__v_gelu_grad_from(e, x, e);
        TSF__EACH(TSF__V(storeu_ps)(dgelu + j + u * TSF__VL, e[u]));
    }
}
static void tsf__v_gelu_grad(float *dinp, const float *dout, const float *inp, int n,
                             int accumulate) {
    tsf__vf x[TSF__VN], e[TSF__VN];
    int j, u;
    for (j = 0; j < n; j += TSF__VW) {
        TSF__EACH(x[u] = TSF__V(loadu_ps)(inp + j + u * TSF__VL));
        tsf__v_one_plus_erf(e, x);
        tsf__v_gelu_grad_from(e, x, e);
        TSF__EACH(e[u] = TSF__V(mul_ps)(e[u], TSF__V(loadu_ps)(dout + j + u * TSF__VL)));
        if (accumulate)
            TSF__EACH(e[u] = TSF__V(add_ps)(TSF__V(loadu_ps)(dinp + j + u * TSF__VL), e[u]));
        TSF__EACH(TSF__V(storeu_ps)(dinp + j + u * TSF__VL, e[u]));
    }
}
#endif

#endif /* TIMESFORMER_IMPLEMENTATION */

/*
LICENSE

MIT License. Copyright (c) 2026 the timesformer.h authors.

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
*/
