#!/usr/bin/env bash
# Lyapunov sweeps on a SLURM cluster: one array task per seed.
#
#   sbatch bash/lyapunov_sweeps.sh                 # 10 seeds of the default sweep
#   sbatch --array=0-3 bash/lyapunov_sweeps.sh     # 4 seeds
#   bash bash/lyapunov_sweeps.sh                   # outside SLURM: runs seed 0 here
#
# Each task writes its own run directory under $RUNS (config.json records the SLURM ids).
# Options can also come from the environment (NRMKIT_<OPTION>, e.g. NRMKIT_DTYPE=float64)
# or from a TOML file passed with --config.
#SBATCH --job-name=nrmkit-lyapunov
#SBATCH --array=0-9
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=00:30:00
#SBATCH --output=logs/%x_%A_%a.out
set -euo pipefail

seed="${SLURM_ARRAY_TASK_ID:-0}"
RUNS="${RUNS:-data/runs/sweeps}"
mkdir -p logs "$RUNS"
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-2}"

# λ_max across the transition to chaos (N = 1000, 7 couplings × 10 networks).
transition_2_chaos --gmin 0.5 --gmax 3 --m_g 7 --n_samples 10 \
    --seed "$seed" --output-dir "$RUNS/transition_2_chaos/seed_$seed" --overwrite

# Full spectra, attractor dimension and entropy at a few couplings (N = 200).
spectrum --n 200 --g 2 --g 3 --g 4 --g 6 --g 10 --n_samples 2 --tsim 500 --tons 1 \
    --dtype float64 --seed "$seed" --output-dir "$RUNS/spectrum/seed_$seed" --overwrite
