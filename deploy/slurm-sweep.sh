#!/bin/bash
# A seed sweep as a Slurm job array: 32 tasks, each sweeping one shard of
# seeds 0..1000000 into a shared directory; merge when all are done.
#
#   mkdir -p results
#   jobid=$(sbatch --parsable deploy/slurm-sweep.sh)
#   sbatch --dependency=afterany:$jobid --wrap "target/release/faultline merge results"
#
#SBATCH --job-name=faultline-sweep
#SBATCH --array=1-32
#SBATCH --cpus-per-task=2
#SBATCH --mem=256M
#SBATCH --time=02:00:00
#SBATCH --output=results/slurm-%A_%a.log

# Exit 1 means a seed failed an invariant: the task still succeeded.
target/release/faultline sweep scenarios/orders-autocommit-crash.ron \
  --seeds 0..1000000 --shard "${SLURM_ARRAY_TASK_ID}/32" \
  --jobs "${SLURM_CPUS_PER_TASK:-2}" --out results
code=$?
[ "$code" -le 1 ] || exit "$code"
