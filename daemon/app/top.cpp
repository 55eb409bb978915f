// `loopstall top`: the refresh loop, keys, and the two ways of drawing
// (ncurses on a terminal, plain tables with --batch or when piped).
#include "loopstall/top.hpp"

#include <curses.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "daemon_client.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/control_protocol.hpp"
#include "loopstall/control_server.hpp"
#include "loopstall/detector.hpp"

namespace loopstall {
namespace {

class NullSink : public Sink {
 public:
  void stall(const StallReport&) override {}
};

class StandaloneSource : public TopSource {
 public:
  StandaloneSource(const Selection& sel, double threshold_ms, const EngineFactory& make)
      : det_(engine_options(threshold_ms), make), corr_(sel, threshold_ms, sink_), t0_(monotonic_ns()) {
    corr_.keep_exited_totals(false);  // a live view: exited processes leave it
    det_.add(corr_);
  }
  ~StandaloneSource() override { det_.remove(corr_); }
  void pump(int max_wait_ms) override { det_.step(max_wait_ms); }
  Summary snapshot() override { return corr_.summary(static_cast<double>(monotonic_ns() - t0_) / 1e9); }
  std::string name() const override { return "standalone"; }

 private:
  static EngineOptions engine_options(double threshold_ms) {
    EngineOptions eo;
    eo.tuning.threshold_ms = threshold_ms;
    return eo;
  }
  NullSink sink_;
  Detector det_;
  Correlator corr_;
  std::uint64_t t0_;
};

// Asks loopstalld for its totals: one connection per snapshot (the daemon
// answers and closes), so a restarted daemon is picked up again.
class DaemonSource : public TopSource {
 public:
  explicit DaemonSource(std::string socket) : socket_(std::move(socket)) {}
  void pump(int max_wait_ms) override { poll(nullptr, 0, max_wait_ms); }
  Summary snapshot() override {
    ControlRequest loops;
    loops.cmd = ControlRequest::Cmd::Loops;
    // A daemon that never answers must not freeze the view.
    const auto j = ask_daemon(socket_, loops, std::chrono::seconds(2), 64u << 20);
    if (!j.value("ok", false) || !j.contains("summary"))
      throw std::runtime_error("loopstalld refused: " + j.value("error", std::string("?")));
    try {
      return summary_from_json(j["summary"]);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("loopstalld's answer is malformed: ") + e.what());
    }
  }
  std::string name() const override { return "loopstalld " + socket_; }

 private:
  std::string socket_;
};

double now_s() {
  return static_cast<double>(monotonic_ns()) / 1e9;
}

std::string clock_text() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

std::string title(const TopSource& src, const std::vector<LoopRow>& rows) {
  std::size_t stalled = 0, churning = 0;
  for (const LoopRow& r : rows) stalled += r.ongoing ? 1 : 0, churning += r.churning() ? 1 : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "loopstall top - %s - %s - %zu loop process(es), %zu stalled now, %zu churning",
                clock_text().c_str(), src.name().c_str(), rows.size(), stalled, churning);
  return buf;
}

// Keys: q quits; s cycles the sort; u i p t c n pick one.
bool handle_key(int ch, TopSort& sort) {
  switch (ch) {
    case 'q':
    case 'Q': return false;
    case 's': sort = next_sort(sort); break;
    case 'u': sort = TopSort::Utilisation; break;
    case 'i': sort = TopSort::Iterations; break;
    case 'p': sort = TopSort::P99; break;
    case 't': sort = TopSort::Stalls; break;
    case 'c': sort = TopSort::Churn; break;
    case 'n': sort = TopSort::Pid; break;
    default: break;
  }
  return true;
}

class Screen {
 public:
  Screen() {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
  void draw(const std::string& head, const std::vector<std::string>& table, const std::string& error) {
    int h = 0, w = 0;
    getmaxyx(stdscr, h, w);
    erase();
    mvaddnstr(0, 0, head.c_str(), w);
    mvaddnstr(1, 0, "keys: s sort  u util  i iter/s  p p99  t stalls  c churn  n pid  q quit", w);
    if (!error.empty()) mvaddnstr(2, 0, error.c_str(), w);
    for (std::size_t i = 0; i < table.size() && static_cast<int>(i) + 3 < h; ++i) {
      if (i == 0) attron(A_REVERSE);
      mvaddnstr(static_cast<int>(i) + 3, 0, table[i].c_str(), w);
      if (i == 0) attroff(A_REVERSE);
    }
    refresh();
  }
  int key() { return getch(); }
};

}  // namespace

std::unique_ptr<TopSource> standalone_top_source(const Selection& sel, double threshold_ms, const EngineFactory& make) {
  return std::make_unique<StandaloneSource>(sel, threshold_ms, make);
}

std::unique_ptr<TopSource> daemon_top_source(const std::string& socket) {
  return std::make_unique<DaemonSource>(socket);
}

int top_command(TopCommand cmd, const EngineFactory& make) {
  if (auto s = parse_top_sort(cmd.sort)) cmd.view.sort = *s;
  std::unique_ptr<TopSource> src;
  if (!cmd.standalone) {
    const int fd = connect_control(cmd.socket);
    if (fd >= 0) {
      close(fd);
      src = daemon_top_source(cmd.socket);
    }
  }
  if (!src) {
    Selection sel;
    sel.pids = cmd.view.pids;
    sel.all_loops = cmd.all_loops;
    src = standalone_top_source(sel, cmd.threshold_ms, make);
  }
  return run_top(cmd.view, *src, install_stop_signals());
}

int run_top(const TopOptions& opt, TopSource& src, const std::atomic<bool>& stop) {
  const bool ui = !opt.batch && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
  std::unique_ptr<Screen> screen;
  if (ui) screen = std::make_unique<Screen>();
  LoopRates rates;
  TopSort sort = opt.sort;
  std::vector<LoopRow> rows;
  std::string error;
  rates.update(src.snapshot(), now_s());  // the origin of the first interval's rates
  double next = now_s() + opt.interval_s;
  int shown = 0;
  bool redraw = false;
  while (!stop.load(std::memory_order_relaxed)) {
    const double left = next - now_s();
    if (left <= 0) {
      try {
        rows = rates.update(src.snapshot(), now_s());
        if (!opt.pids.empty()) std::erase_if(rows, [&](const LoopRow& r) { return !opt.pids.count(r.pid); });
        error.clear();
      } catch (const std::exception& e) {
        if (!ui) {
          std::fprintf(stderr, "loopstall: error: %s\n", e.what());
          return 1;
        }
        error = std::string("error: ") + e.what();
      }
      next += opt.interval_s;
      if (next < now_s()) next = now_s() + opt.interval_s;  // fell behind: do not catch up in a burst
      ++shown;
      redraw = true;
    }
    if (redraw) {
      sort_rows(rows, sort);
      if (ui) {
        int h = 0, w = 0;
        getmaxyx(stdscr, h, w);
        (void)h;
        screen->draw(title(src, rows), format_rows(rows, sort, w), error);
      } else {
        std::printf("%s\n", title(src, rows).c_str());
        for (const std::string& line : format_rows(rows, sort, 0)) std::printf("%s\n", line.c_str());
        std::printf("\n");
        std::fflush(stdout);
      }
      redraw = false;
      if (opt.count && shown >= opt.count) break;
    }
    if (ui)
      for (int ch; (ch = screen->key()) != ERR;) {
        if (ch == KEY_RESIZE) redraw = true;
        const TopSort before = sort;
        if (!handle_key(ch, sort)) return 0;
        if (sort != before) redraw = true;
      }
    src.pump(static_cast<int>(std::clamp(left * 1e3, 0.0, ui ? 100.0 : 1000.0)));
  }
  return 0;
}

}  // namespace loopstall
