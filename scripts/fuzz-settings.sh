# Per-target libFuzzer settings, sourced by fuzz-smoke.sh and fuzz-campaign.sh.

# The largest input worth trying per target (libFuzzer's default is 4 KiB).
fuzz_max_len() {
  case $1 in
    elf | python_frames) echo 65536 ;;
    unwinder | proc_maps | procinfo | capture_file) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

# Tokens for the JSON readers.
fuzz_dict_args() {
  case $1 in
    config | control_request) echo "-dict=fuzz/dict/json.dict" ;;
    capture_file) echo "-dict=fuzz/dict/capture_file.dict" ;;
  esac
}
