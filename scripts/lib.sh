# lib.sh — what setup.sh and test.sh share, sourced by both: the options
# that name configurations and build directories, and where each
# configuration builds. Defines functions only; it runs nothing, so that
# each script keeps its own defaults and messages.

# Takes --config NAME and --build-prefix P (or --config=NAME,
# --build-prefix=P) from the front of "$@" into the caller's configs and
# prefix; sets taken to the number of arguments used and returns 0, or
# returns 1 for any other argument. A missing value calls the caller's
# usage and exits 2.
common_option() {
  case "$1" in
  --config | --build-prefix)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    set -- "$1=$2"
    taken=2
    ;;
  --config=* | --build-prefix=*) taken=1 ;;
  *) return 1 ;;
  esac
  case "$1" in
  --config=*) configs+=("${1#*=}") ;;
  *) prefix=${1#*=} ;;
  esac
}

# Expands "all" in configs to float, double and asan (mpich only when
# named); an unknown name
# exits 2 with a message that starts with PROG.
expand_configs() { # PROG
  local c expanded=()
  for c in "${configs[@]}"; do
    case "$c" in
    all) expanded+=(float double asan) ;;
    float | double | asan | mpich) expanded+=("$c") ;;
    *) echo "$1: unknown configuration '$c' (float, double, asan, mpich, all)" >&2; exit 2 ;;
    esac
  done
  configs=("${expanded[@]}")
}

# The build directory of a configuration: PREFIX for float, PREFIX-NAME else.
builddir_of() {
  case "$1" in
  float) echo "$root/$prefix" ;;
  *) echo "$root/$prefix-$1" ;;
  esac
}
