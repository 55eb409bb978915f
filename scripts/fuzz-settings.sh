# Per-target libFuzzer settings, sourced by fuzz-smoke.sh and fuzz-campaign.sh.

# The largest input worth trying per target (libFuzzer's default is 4 KiB).
# proc_maps: its cost grows with the text, its branches do not (dozens of
# mappings fit in 4 KiB; 16 KiB ran 2.8x slower for the same edges).
fuzz_max_len() {
  case $1 in
    elf | python_frames) echo 65536 ;;
    unwinder | procinfo | capture_file) echo 16384 ;;
    proc_maps) echo 4096 ;;
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
