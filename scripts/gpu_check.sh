#!/usr/bin/env bash
# Everything GPU in one device call: conformance of cupy and torch-cuda (classes enforced),
# determinism, compute-sanitizer on a subset, and the benchmark. Results under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/usconv-gpu}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
U="python3 -m usconv_ref.cli"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active --format=csv
python3 -c 'import torch, cupy; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version(), "cupy", cupy.__version__)'
step() { echo; echo "=== $*"; }
STEPS=${STEPS:-cupy,mma,dw,pytest,torch,det,memcheck,racecheck,bench,ncu}   # choose with STEPS=cupy,bench ...
on() { [[ ",$STEPS," == *",$1,"* ]]; }
on cupy && { step "cupy conformance (all cases, determinism)";     $U check --backend cupy -q --report "$OUT/cupy.json" > "$OUT/cupy.txt"; grep -E "^cupy|^FAIL|^ERROR|^    [a-z_]+ \[" "$OUT/cupy.txt" | cut -c1-200 | head -n 30; }
on mma && { step "tensor-core forward: random cases against torch float64"; python3 scripts/gpu_mma_check.py > "$OUT/mma.txt"; tail -n 1 "$OUT/mma.txt"; }
on dw && { step "register-window depthwise kernels: bitwise against the staged ones, grad_w against torch float64; times"; (cd scripts && python3 gpu_dw_check.py > "$OUT/dw.txt"); echo "exit $?"; grep -v " ok$" "$OUT/dw.txt"; }
on pytest && { step "pytest: GPU conformance tests"; python3 -m pytest -q -p no:cacheprovider tests/test_conformance.py -k "cupy or cuda" 2>&1 | tail -n 2; }
on torch && { step "torch-cuda default (TF32 on, declared tf32)";   $U check --backend torch-cuda -q --report "$OUT/torch_cuda.json" > "$OUT/torch.txt"; grep -E "^torch|^FAIL|^ERROR|^    [a-z_]+ \[" "$OUT/torch.txt" | cut -c1-200 | head -n 30; }
on torch && { step "torch-cuda[declare=fp32] with TF32 on: must fail on fp32 dense";
$U check --backend 'torch-cuda[declare=fp32]' -q --no-determinism > "$OUT/declare_fp32.txt"; grep -E "^torch|^FAIL.*(float32|complex64)" "$OUT/declare_fp32.txt" | cut -c1-160; }
on torch && { step "torch-cuda[tf32=false,declare=fp32]: must pass"; $U check --backend 'torch-cuda[tf32=false,declare=fp32]' -q > "$OUT/strict.txt"; grep -E "^torch|^FAIL" "$OUT/strict.txt"; }
on torch && { step "torch-cuda[deterministic=true]";                $U check --backend 'torch-cuda[deterministic=true]' -q > "$OUT/det.txt"; grep -E "^torch|^FAIL" "$OUT/det.txt"; }
on det && { step "determinism, 10 runs";  python3 scripts/gpu_determinism.py; }
on memcheck && { step "compute-sanitizer memcheck (subset)";
compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m usconv_ref.cli check --backend cupy -q --no-determinism --filter '[pd][aw]*' > "$OUT/memcheck.log" 2>&1
echo "memcheck exit: $? (0 = clean; 9 = errors found)"; tail -n 4 "$OUT/memcheck.log"
compute-sanitizer --tool memcheck --error-exitcode 9 python3 scripts/gpu_mma_check.py > "$OUT/memcheck_mma.log" 2>&1
echo "memcheck (tensor-core cases) exit: $?"; tail -n 2 "$OUT/memcheck_mma.log"
(cd scripts && compute-sanitizer --tool memcheck --error-exitcode 9 python3 gpu_dw_check.py --no-time > "$OUT/memcheck_dw.log" 2>&1)
echo "memcheck (register-window depthwise cases) exit: $?"; tail -n 2 "$OUT/memcheck_dw.log"; }
on bench && { step "benchmark"; python3 scripts/gpu_bench.py --out "$OUT/bench.json"; }
on ncu && { step "ncu: depthwise fp32 forward kernel"; ncu --kernel-name regex:dw_reg --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats python3 scripts/gpu_bench.py --quick 2>&1 | grep -E "Duration|Throughput|Occupancy|Registers|Shared Memory|Block Size|Grid Size|Waves" | head -n 30; }
on racecheck && { step "compute-sanitizer racecheck (tiled kernels use shared memory)"
compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m usconv_ref.cli check --backend cupy -q --no-determinism --filter 'dw.*' > "$OUT/racecheck.log" 2>&1
echo "racecheck exit: $? (0 = clean; 9 = hazards found)"; tail -n 4 "$OUT/racecheck.log"
compute-sanitizer --tool racecheck --error-exitcode 9 python3 scripts/gpu_mma_check.py > "$OUT/racecheck_mma.log" 2>&1
echo "racecheck (tensor-core cases) exit: $?"; tail -n 2 "$OUT/racecheck_mma.log"; }
on ncu2 && { step "ncu: dw_vec on K31 fp32, dw_reg on K4 fp16 (details)";
ncu --kernel-name regex:dw_vec --launch-skip 0 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy python3 scripts/gpu_one.py K31 2>&1 | grep -E "Duration|Throughput|Registers|Stall|Warp Cycles|Issue|Executed Ipc|Achieved Occupancy|Local|Spill" | head -n 40
ncu --kernel-name regex:dw_reg --launch-count 1 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy python3 scripts/gpu_one.py fp16 2>&1 | grep -E "Duration|Throughput|Registers|Stall|Warp Cycles|Issue|Executed Ipc|Achieved Occupancy|Local|Spill|Hit" | head -n 40; }
on ncu3 && { step "ncu: the 8-channel-group kernels (grp_wide forward and grad_x, grp_wide_gw)";
ncu --kernel-name regex:"grp_wide|grp_reg|dw_reg_gw" --launch-count 3 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy python3 scripts/gpu_one.py g128 bwd 2>&1 | grep -E "grp_wide|grp_reg|dw_reg_gw|Duration|Throughput|Registers|Stall|Warp Cycles|Issue|Executed Ipc|Achieved Occupancy|Hit|Block Size|Grid Size|SM Frequency" | head -n 90; }
on ncu4 && { step "ncu: dw_wide, dw_wide_gw (K64 fp16 forward, grad_x, grad_w; K31 fp32 forward); stall reasons";
ncu --kernel-name regex:"dw_wide|dw_reg_gw" --launch-count 3 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy python3 scripts/gpu_one.py K64 bwd 2>&1 | grep -E "dw_wide|dw_reg_gw|Duration|Throughput|Registers|Stall|Warp Cycles|Issue|Executed Ipc|Achieved Occupancy|Hit|Block Size|Grid Size|SM Frequency" | head -n 80
ncu --kernel-name regex:dw_wide --launch-count 1 --section SpeedOfLight --section WarpStateStats python3 scripts/gpu_one.py K31 2>&1 | grep -E "dw_wide|Duration|Throughput|Warp Cycles|Issue|SM Frequency" | head -n 20
M=smsp__average_warps_issue_stalled; R=_per_issue_active.ratio  # stall reasons, warps per issued instruction
ncu --kernel-name regex:dw_wide --launch-count 3 --metrics sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,${M}_barrier$R,${M}_long_scoreboard$R,${M}_short_scoreboard$R,${M}_mio_throttle$R,${M}_math_pipe_throttle$R,${M}_wait$R,${M}_not_selected$R,${M}_selected$R,${M}_lg_throttle$R,${M}_no_instruction$R,${M}_branch_resolving$R python3 scripts/gpu_one.py K64 bwd 2>&1 | grep -E "dw_wide|smsp__|sm__" | head -n 60; }
on ncu5 && { step "ncu: every backward kernel of the K4 fp16, stride 2, dilation 2, x2, K9 and K31 rows; dw_reg_bwd fp16 in detail"
for cfg in fp16 s2 dil2 x2 K9 K31; do echo "--- $cfg backward"
ncu --kernel-name regex:"dw_|conv_|grp_" --section SpeedOfLight --section LaunchStats --section Occupancy python3 scripts/gpu_one.py $cfg bwd 2>&1 | grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Block Size|Grid Size" | head -n 60; done
M=smsp__average_warps_issue_stalled; R=_per_issue_active.ratio
for k in dw_reg_bwd dw_reg_gx dw_reg_gw; do cfg=fp16; [[ $k != dw_reg_bwd ]] && cfg=s2
ncu --kernel-name regex:$k --launch-count 1 --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,${M}_long_scoreboard$R,${M}_short_scoreboard$R,${M}_mio_throttle$R,${M}_lg_throttle$R,${M}_wait$R,${M}_not_selected$R,${M}_selected$R,${M}_no_instruction$R,${M}_drain$R python3 scripts/gpu_one.py $cfg bwd 2>&1 | grep -E "^  [a-z_]+.*\(|smsp__|sm__|gpu__|dram__|l1tex__" | head -n 20; done; }
on ncu6 && { step "ncu: dw_reg_bwd fp16 and dw_reg_gw fp16 (K9), the switch over constant offsets against the barrel shift (select)"
for cfg in fp16 K9h; do for v in switch select; do echo "--- $cfg $v"
ncu --kernel-name regex:"dw_reg_bwd|dw_reg_gw|dw_long" --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed python3 scripts/gpu_one.py $cfg bwd $v 2>&1 | grep -E "^  [a-z_ ]+.*\(|gpu__|smsp__|launch__|sm__|dram__" | sed -E 's/\(const.*\) \(/(/' | cut -c1-110; done; done; }
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv,noheader
