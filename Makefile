# timesformer.h - build, test and benchmark. Everything goes into build/.
#
#   make            build the tests, examples and benchmarks
#   make test       the full test suite: every build configuration (default, portable C,
#                   OpenMP, ASan+UBSan, AVX2, C++, clang, two translation units, NEON
#                   under qemu when available). Last line: "N passed, N failed".
#   make demo       TimeSformer learns motion from synthetic videos: divided vs joint vs
#                   space-only attention, trained from scratch (minutes on 2 cores; needs only cc)
#   make bench      matmul benchmark for every SIMD path the CPU runs (GFLOP/s, % of peak,
#                   ratio to OpenBLAS's kernels of the same ISA when installed), a summary
#   make bench-model    the whole model: inference, training step and lean training step
#                   (recompute + fused SGD), GFLOP/s, % of peak, peak memory, 3 variants x
#                   small/ViT-B x 1/2 threads (some minutes; BENCH_ARGS=--quick for the
#                   small config only)
#   make bench-scaling  time and memory against frames (4..96), table + build/bench_scaling.svg
#   make bench-pytorch  the same against PyTorch 1.13 at each of its thread settings, in the
#                   same run (needs /usr/bin/python3 with torch; skipped otherwise)
#   make bench-ort  inference against ONNX Runtime, interleaved, logits checked first (needs
#                   node and onnxruntime-node in build/ort: mkdir -p build/ort && cd build/ort
#                   && ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node; and torch to
#                   export the models once; skipped otherwise)
#   make bench-mpi  data-parallel training step: 2 ranks x 1 thread (build/tsf-mpi) against
#                   1 process x 2 threads, small and ViT-B (needs mpicc and mpirun; minutes)
#   make fuzz       libFuzzer on the file readers (safetensors, torch.save, config.json, clips,
#                   manifests), FUZZ_SECONDS (60) each; prints executions and coverage
#                   (needs clang and libclang-rt-dev). Findings go to build/fuzz/crashes/.
#   make soak       train a tiny model for SOAK_STEPS (20000) steps with checkpoints: flat
#                   memory, and a run resumed at a random step matches bit for bit
#   make format     clang-format every C file; make format-check only checks
#
# Flags worth knowing:
#   NATIVE=1 (default) adds -march=native: the widest SIMD path the CPU has (AVX-512 on
#            Zen 4). NATIVE=0 gives a binary for any x86-64 (the portable C kernels).
#   OMP=1    (default) adds -fopenmp when the compiler supports it; OMP=0 builds serial.
#   MPI=1    also builds build/tsf-mpi: the tsf program with MPI (mpicc; Debian: openmpi-bin
#            libopenmpi-dev), for data-parallel tsf train and tsf eval over several processes
#            and machines (mpirun -np N build/tsf-mpi train ...). build/tsf never needs MPI.

CC      ?= cc
MPICC   ?= mpicc
MPI     ?= 0
CXX     ?= c++
NATIVE  ?= 1
OMP     ?= 1
OPT     ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion \
           -Wstrict-prototypes -Wmissing-prototypes
ARCH     = $(if $(filter 1,$(NATIVE)),-march=native,)
OMPFLAG  = $(if $(filter 1,$(OMP)),$(shell echo 'int main(void){return 0;}' | \
           $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp),)
CFLAGS  += $(OPT) $(WARN) $(ARCH) $(OMPFLAG) -I.
LDLIBS  += -lm

# OpenBLAS is a yardstick for bench/ only, never a dependency of the library.
BLAS     = $(shell test -f /usr/include/x86_64-linux-gnu/cblas.h -o -f /usr/include/cblas.h && \
             echo 'int main(void){return 0;}' | $(CC) -x c - -lopenblas -o /dev/null 2>/dev/null && \
             echo -DTSF_BENCH_OPENBLAS)
BLASLIB  = $(if $(BLAS),-lopenblas,)

# Tools that read and write images use stb from Debian's libstb-dev (never vendored).
STB_DIR ?= /usr/include/stb
HAVE_STB = $(shell test -f $(STB_DIR)/stb_image.h -a -f $(STB_DIR)/stb_image_write.h -a \
             -f $(STB_DIR)/stb_image_resize.h && echo 1)
STB_TOOLS = build/frames2clip build/clip2png build/mkdataset

EXAMPLES = $(patsubst examples/%.c,build/%,$(wildcard examples/*.c))

BINS = build/tsf build/video2clip build/demo build/test_main build/test_clip build/bench_matmul \
       $(EXAMPLES) $(if $(HAVE_STB),$(STB_TOOLS),)

.PHONY: all test check fuzz soak bench bench-model bench-scaling bench-pytorch bench-ort bench-mpi demo \
        format format-check \
        clean stb-note
BINS += build/bench_model
BINS += $(if $(filter 1,$(MPI)),build/tsf-mpi,)
all: $(BINS) stb-note

stb-note:
	@$(if $(HAVE_STB),true,echo "note: skipped frames2clip, clip2png and mkdataset: they need stb" \
	  "(sudo apt-get install libstb-dev, or make STB_DIR=/path/to/stb)")

build:
	mkdir -p build

build/test_main: tests/*.c tests/*.h timesformer.h | build
	$(CC) $(CFLAGS) -Werror tests/test_main.c -o $@ $(LDLIBS)

build/bench_matmul: bench/bench_matmul.c bench/bench_common.h timesformer.h | build
	$(CC) $(CFLAGS) $(BLAS) bench/bench_matmul.c -o $@ $(LDLIBS) $(BLASLIB)

build/bench_model: bench/bench_model.c bench/bench_common.h timesformer.h | build
	$(CC) $(CFLAGS) bench/bench_model.c -o $@ $(LDLIBS)

STB_FLAGS = $(if $(HAVE_STB),-I$(STB_DIR),-DTT_NO_STB)

build/tsf: tools/tsf.c tools/tsf_*.c tools/tsf_tools.h tools/tsf_chart.h tools/tsf_mpi.h timesformer.h | build
	$(CC) $(CFLAGS) $(STB_FLAGS) tools/tsf.c -o $@ $(LDLIBS)

# MPI lives in tools/tsf_mpi.h, compiled only here (-DTSF_MPI); the library never sees it.
build/tsf-mpi: tools/tsf.c tools/tsf_*.c tools/tsf_tools.h tools/tsf_chart.h tools/tsf_mpi.h timesformer.h | build
	$(MPICC) $(CFLAGS) $(STB_FLAGS) -DTSF_MPI tools/tsf.c -o $@ $(LDLIBS)

build/video2clip: tools/video2clip.c tools/tsf_tools.h timesformer.h | build
	$(CC) $(CFLAGS) tools/video2clip.c -o $@ $(LDLIBS)

build/frames2clip build/clip2png build/mkdataset: build/%: tools/%.c tools/tsf_tools.h timesformer.h | build
	$(CC) $(CFLAGS) -I$(STB_DIR) $< -o $@ $(LDLIBS)

build/test_clip: tests/test_clip.c tests/tsf_test.h timesformer.h | build
	$(CC) $(CFLAGS) -Werror tests/test_clip.c -o $@ $(LDLIBS)

$(EXAMPLES): build/%: examples/%.c timesformer.h | build
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# The demo needs only a C compiler: no stb, no data files (tools/demo.c makes its own videos).
# It is built without -g: debug information costs a second of the 3 minutes it aims at.
build/demo: OPT := $(filter-out -g,$(OPT))
build/demo: tools/demo.c tools/tsf_tools.h tools/tsf_chart.h timesformer.h | build
	$(CC) $(CFLAGS) -DTT_NO_STB tools/demo.c -o $@ $(LDLIBS)

# make demo builds only the demo (one compile; the other programs are not needed to run it).
# The demo sets OpenMP's waiting policy itself (tools/tsf_tools.h, tt_omp_passive).
# DEMO_ARGS passes options through, e.g. make demo DEMO_ARGS="--variants divided --seed 2".
demo: build/demo
	./build/demo $(DEMO_ARGS)

test:
	CC="$(CC)" CXX="$(CXX)" bash tests/run_all.sh

check: test format-check

FUZZ_SECONDS ?= 60
fuzz:
	CLANG=$${CLANG:-clang} bash tests/fuzz/run_fuzz.sh $(FUZZ_SECONDS)

SOAK_STEPS ?= 20000
build/test_soak: tests/test_soak.c tests/tsf_test.h timesformer.h | build
	$(CC) $(OPT) $(WARN) $(ARCH) -I. -Werror tests/test_soak.c -o $@ $(LDLIBS)

soak: build/test_soak
	./build/test_soak --steps $(SOAK_STEPS)

# One table per SIMD path the CPU can run (AVX-512, AVX2, NEON, portable), each against
# OpenBLAS's kernels for the same ISA (OPENBLAS_CORETYPE), then a summary; BENCH_ARGS passes
# bench_matmul options, e.g. make bench BENCH_ARGS="--quick" or "--isa avx2 --threads 1".
bench:
	bash bench/bench_isa.sh $(BENCH_ARGS)
	@echo "the whole model: make bench-model, make bench-scaling, make bench-pytorch (bench/)"

# BENCH_ARGS passes options through, e.g. make bench-model BENCH_ARGS="--configs vitb".
bench-model: build/bench_model
	./build/bench_model $(BENCH_ARGS)

bench-scaling: build/bench_model
	./build/bench_model --scaling --svg build/bench_scaling.svg $(BENCH_ARGS)

# BENCH_ARGS passes options through, e.g. make bench-mpi BENCH_ARGS="--configs small".
bench-mpi:
	bash bench/bench_mpi.sh $(BENCH_ARGS)

bench-pytorch: build/bench_model
	@if /usr/bin/python3 -c 'import torch' 2>/dev/null; then \
	  /usr/bin/python3 bench/compare_pytorch.py $(BENCH_ARGS); else \
	  echo "bench-pytorch: skipped: /usr/bin/python3 has no torch" \
	    "(sudo apt-get install python3-torch python3-numpy)"; fi

build/ort_check: bench/ort_check.c bench/bench_common.h timesformer.h | build
	$(CC) $(CFLAGS) bench/ort_check.c -o $@ $(LDLIBS)

bench-ort: build/ort_check
	@if [ -x /usr/bin/python3 ]; then /usr/bin/python3 bench/compare_ort.py $(BENCH_ARGS); else \
	  echo "bench-ort: skipped: no /usr/bin/python3"; fi

FORMAT_FILES = timesformer.h $(wildcard tests/*.c tests/*.h tests/*.cpp tests/fuzz/*.c tests/fuzz/*.h bench/*.c bench/*.h examples/*.c tools/*.c tools/*.h)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build
