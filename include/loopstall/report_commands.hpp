// The `loopstall flamegraph` and `loopstall diff` subcommands: read capture
// files (a damaged or newer one throws CaptureError: exit 1), write the
// result to a file or stdout ("-").
#pragma once

#include <string>

namespace loopstall {

// format: svg, folded or speedscope.
int flamegraph_command(const std::string& capture, const std::string& output, const std::string& format);
// The text table to stdout; with svg_output, also a differential flame graph
// (svg_output "-": the SVG to stdout, the table to stderr).
int diff_command(const std::string& a, const std::string& b, const std::string& svg_output);

}  // namespace loopstall
