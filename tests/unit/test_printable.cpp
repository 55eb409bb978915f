// printable() and valid_utf8(): outside strings made safe for terminals and
// UTF-8-only formats.
#include <doctest/doctest.h>

#include <string>

#include "loopstall/printable.hpp"

using namespace loopstall;
using namespace std::string_literals;

TEST_CASE("printable escapes every control byte and keeps text") {
  CHECK(printable("gunicorn: worker [app]") == "gunicorn: worker [app]");
  CHECK(printable("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07");
  CHECK(printable("\x1b[2J\r\n\t") == "\\x1b[2J\\x0d\\x0a\\x09");
  CHECK(printable("a\0b"s) == "a\\x00b");
  CHECK(printable("\x7f") == "\\x7f");
  CHECK(printable("back\\slash") == "back\\\\slash");  // unambiguous: "\x1b" in a name is not ESC
  // UTF-8 text passes; C1 controls (U+009B is CSI on some terminals) and
  // invalid bytes do not.
  CHECK(printable("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x8d") == "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x8d");
  CHECK(printable("\xc2\x9b"
                  "31m") == "\\xc2\\x9b31m");
  CHECK(printable("\x9b"
                  "31m") == "\\x9b31m");
  CHECK(printable("\xff\xfe") == "\\xff\\xfe");
  CHECK(printable("\xc3") == "\\xc3");                    // truncated
  CHECK(printable("\xc0\x80") == "\\xc0\\x80");           // overlong NUL
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // surrogate
  for (int b = 0; b < 256; ++b) {
    const std::string out = printable(std::string(1, static_cast<char>(b)));
    for (char c : out) CHECK((static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f));
  }
}

TEST_CASE("valid_utf8 replaces only what is not UTF-8") {
  CHECK(valid_utf8("caf\xc3\xa9\n\x1b") == "caf\xc3\xa9\n\x1b");
  CHECK(valid_utf8("a\xff"
                   "b") ==
        "a\xef\xbf\xbd"
        "b");
  CHECK(valid_utf8("\xe2\x9c") == "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("display_columns and first_columns count characters, not bytes") {
  CHECK(display_columns("abc") == 3);
  CHECK(display_columns("\u00e9t\u00e9") == 3);
  CHECK(display_columns("") == 0);
  CHECK(first_columns("abcdef", 3) == "abc");
  CHECK(first_columns("\u00e9t\u00e9!", 3) == "\u00e9t\u00e9");
  CHECK(first_columns("ab", 5) == "ab");
  CHECK(first_columns("ab", 0).empty());
}
