// Strings from the outside (comm, exe, cmdline, service, Python function and
// file names, native symbols) made safe for a terminal or a log line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace loopstall {

// Valid UTF-8 from U+00A0 up passes through, as does printable ASCII; every
// other byte (C0 controls such as ESC, DEL, C1 controls, bytes of invalid
// UTF-8) becomes "\xHH", and a backslash "\\", so the result cannot move the
// cursor, recolour, retitle or otherwise drive the terminal it is printed on.
std::string printable(std::string_view s);

// Characters on screen of printable() text (valid UTF-8), and its first
// `cols` of them: never cuts a character in two.
std::size_t display_columns(std::string_view s);
std::string first_columns(std::string_view s, std::size_t cols);

}  // namespace loopstall

namespace loopstall {

// s with every byte that is not part of valid UTF-8 replaced by U+FFFD: for
// formats that must be UTF-8 (one bad byte in a Prometheus label value makes
// the scraper reject the whole scrape).
std::string valid_utf8(std::string_view s);

}  // namespace loopstall
