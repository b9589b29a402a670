#!/usr/bin/env bash
# Lyapunov sweeps on a SLURM cluster: the transition to chaos and full spectra, each split
# into array tasks (one chunk of networks per task) and aggregated by `nrmkit collect`.
#
#   bash bash/lyapunov_sweeps.sh --dry-run   # print what would be submitted, run nothing
#   bash bash/lyapunov_sweeps.sh             # submit: array jobs + a dependent collect job
#   bash bash/lyapunov_sweeps.sh --local     # no SLURM: the same sweeps in local subprocesses
#
# Every task of an array writes parts/unit-*.npz into the shared run folder; rerunning a
# failed task (or the whole array) never recomputes finished networks. The numbers equal a
# serial run with the same seed. Options also come from NRMKIT_<OPTION> variables or a TOML
# file given with --config.
set -euo pipefail

RUNS="${RUNS:-data/runs/sweeps}"
SEED="${SEED:-0}"
TASKS="${TASKS:-10}"                 # array tasks per sweep
PARTITION="${PARTITION:-}"           # e.g. PARTITION=cpu
TIME="${TIME:-00:30:00}"
CPUS="${CPUS:-4}"

# sweep_mode, show, submit_array and run_local: one copy for the three sweep scripts
source "$(dirname "${BASH_SOURCE[0]}")/lib/array_sweeps.sh"
sweep_mode "$@"

# λ_max across the transition to chaos (N = 1000, 7 couplings × 10 networks).
T2C=(transition_2_chaos --gmin 0.5 --gmax 3 --m_g 7 --n_samples 10 --seed "$SEED"
     --output-dir "$RUNS/transition_2_chaos/seed_$SEED")
# Full spectra, attractor dimension and entropy (N = 200, float64).
SPECTRUM=(spectrum --n 200 --g 2 --g 3 --g 4 --g 6 --g 10 --n_samples 4 --tsim 500 --tons 1
          --dtype float64 --seed "$SEED" --output-dir "$RUNS/spectrum/seed_$SEED")

if [[ "$mode" == "local" ]]; then
    run_local "${T2C[@]}"
    run_local "${SPECTRUM[@]}"
else
    submit_array transition_2_chaos "$TASKS" "${T2C[@]}"
    submit_array spectrum "$TASKS" "${SPECTRUM[@]}"
fi
