# Shared by the sweep scripts in bash/ (sourced, not run): submit a sweep as a SLURM array of
# tasks in array-task mode plus a `nrmkit collect` job that waits for it, or run it here in
# local subprocesses. The caller sets PARTITION, TIME, CPUS and calls `sweep_mode "$@"`.

sweep_mode() {       # sweep_mode "$@": mode = submit (no argument), dry (--dry-run) or local
    case "${1:-}" in
        --dry-run) mode="dry" ;;
        --local) mode="local" ;;
        "") mode="submit" ;;
        *) echo "usage: $0 [--dry-run | --local]" >&2; exit 2 ;;
    esac
}

show() { printf '%q ' "$@"; printf '\n'; }

submit_array() {     # submit_array NAME TASKS COMMAND...: array of TASKS tasks, then collect
    local name="$1" tasks="$2"; shift 2
    local folder
    folder="${*: -1}"                # the run folder is the last argument
    local partition=()
    [[ -n "$PARTITION" ]] && partition=(--partition "$PARTITION")
    local task_command
    task_command="$(show "$@") --task_count $tasks --task_index \$SLURM_ARRAY_TASK_ID --quiet"
    local array=(sbatch --parsable --job-name "nrmkit-$name" --array "0-$((tasks - 1))"
                 --cpus-per-task "$CPUS" --time "$TIME" --output "logs/%x_%A_%a.out"
                 "${partition[@]}" --export "ALL,OMP_NUM_THREADS=$CPUS" --wrap "$task_command")
    if [[ "$mode" == "dry" ]]; then
        show "${array[@]}"
        show sbatch --dependency "afterok:<array job id>" --job-name "nrmkit-$name-collect" \
            "${partition[@]}" --wrap "nrmkit collect $folder"
        return
    fi
    mkdir -p logs
    local job
    job="$("${array[@]}")"
    sbatch --dependency "afterok:$job" --job-name "nrmkit-$name-collect" "${partition[@]}" \
        --output "logs/%x_%j.out" --wrap "nrmkit collect $folder"
    echo "$name: array job $job ($tasks tasks), collect after it: $folder"
}

run_local() {        # run_local COMMAND...: the whole sweep here, in local subprocesses
    if [[ "$mode" == "dry" ]]; then show "$@" --executor local --jobs 2; return; fi
    "$@" --executor local --jobs 2
}
