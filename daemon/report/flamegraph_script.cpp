// The script inside every flame graph SVG (see flamegraph_svg.cpp for the
// elements it works on). No network, no libraries: it only moves and
// recolours frames the SVG already holds.
//   hover a frame: its name and time in the details line at the bottom
//   click a frame: zoom to it (its callers stay, faded, full width); click
//     "Reset Zoom" or the root to go back
//   Ctrl-F, F3 or "Search": highlight frames matching a regular expression
//     and show the share of the graph they cover; Escape or "Reset Search"
//   ?s=REGEX in the URL searches at load, ?z=TEXT zooms to the widest frame
//     whose name contains TEXT
#include "loopstall/flamegraph.hpp"

namespace loopstall {

const char* const kFlameScript = R"JS((function () {
  "use strict";
  var svg = document.documentElement;
  var total = parseFloat(svg.getAttribute("data-total-ms")) || 0;
  var details = document.getElementById("details");
  var matched = document.getElementById("matched");
  var unzoomBtn = document.getElementById("unzoom");
  var searchBtn = document.getElementById("search");
  var frames = [], left = 10, full = 0, charPx = 7.2, searching = null;
  var HIT = "rgb(230,0,230)";

  Array.prototype.forEach.call(document.querySelectorAll("g.f"), function (g) {
    var rect = g.querySelector("rect"), text = g.querySelector("text");
    var info = g.querySelector("title").textContent;
    var f = {g: g, rect: rect, text: text, name: info.slice(0, info.lastIndexOf(" \u2014 ")),
             info: info, fill: rect.getAttribute("fill"),
             x: parseFloat(rect.getAttribute("x")), w: parseFloat(rect.getAttribute("width")),
             y: parseFloat(rect.getAttribute("y"))};
    f.cx = f.x; f.cw = f.w;
    g.lsFrame = f;
    frames.push(f);
  });
  if (frames.length) {
    left = frames[0].x;
    full = frames[0].w;
    var t = frames[0].text, kept = t.textContent;
    t.textContent = "mmmmmmmmmmmmmmmmmmmm";
    var len = t.getComputedTextLength();
    if (len > 0) charPx = len / 20;
    t.textContent = kept;
  }

  function fit(f) {
    var room = Math.floor((f.cw - 6) / charPx), s = f.name;
    if (room < 3) s = "";
    else if (s.length > room) s = s.slice(0, room - 2) + "..";
    f.text.textContent = s;
  }
  function place(f, x, w) {
    f.cx = x; f.cw = w;
    f.rect.setAttribute("x", x.toFixed(2));
    f.rect.setAttribute("width", w.toFixed(2));
    f.text.setAttribute("x", (x + 3).toFixed(2));
    fit(f);
  }
  function show(f, on) { f.g.style.display = on ? "" : "none"; }

  function unzoom() {
    frames.forEach(function (f) { f.g.classList.remove("zp"); show(f, true); place(f, f.x, f.w); });
    unzoomBtn.classList.add("hidden");
  }
  function zoom(z) {
    if (z.w >= full - 0.01) { unzoom(); return; }
    var scale = full / z.w, eps = 0.01;
    frames.forEach(function (f) {
      f.g.classList.remove("zp");
      if (f.y > z.y) {  // below it: its callers stay, full width
        var caller = f.x <= z.x + eps && f.x + f.w >= z.x + z.w - eps;
        show(f, caller);
        if (caller) { f.g.classList.add("zp"); place(f, left, full); }
      } else {
        var inside = f.x >= z.x - eps && f.x + f.w <= z.x + z.w + eps;
        show(f, inside);
        if (inside) place(f, left + (f.x - z.x) * scale, f.w * scale);
      }
    });
    unzoomBtn.classList.remove("hidden");
  }

  function toRegExp(term) {
    try { return new RegExp(term); } catch (e) {
      return new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    }
  }
  // The share of the graph the matches cover: nested matches count once.
  function search(term) {
    var re = toRegExp(term), spans = [];
    frames.forEach(function (f) {
      var hit = re.test(f.name);
      f.rect.setAttribute("fill", hit ? HIT : f.fill);
      if (hit) spans.push([f.x, f.x + f.w]);
    });
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var sum = 0, end = -Infinity;
    spans.forEach(function (s) {
      if (s[0] >= end) { sum += s[1] - s[0]; end = s[1]; }
      else if (s[1] > end) { sum += s[1] - end; end = s[1]; }
    });
    var share = full > 0 ? Math.min(1, sum / full) : 0;
    matched.textContent = "Matched: " + (100 * share).toFixed(1) + "% (" + (share * total).toFixed(1) + " ms)";
    svg.setAttribute("data-matched", share.toFixed(4));
    searchBtn.textContent = "Reset Search";
    searching = term;
  }
  function resetSearch() {
    frames.forEach(function (f) { f.rect.setAttribute("fill", f.fill); });
    matched.textContent = " ";
    svg.removeAttribute("data-matched");
    searchBtn.textContent = "Search";
    searching = null;
  }
  function askSearch() {
    var term = window.prompt("Search frames (regular expression):", searching || "");
    if (term) search(term);
  }

  function frameOf(node) {
    while (node && node !== svg) { if (node.lsFrame) return node.lsFrame; node = node.parentNode; }
    return null;
  }
  svg.addEventListener("mouseover", function (e) {
    var f = frameOf(e.target);
    if (f) details.textContent = f.info;
  });
  svg.addEventListener("mouseout", function (e) { if (frameOf(e.target)) details.textContent = " "; });
  svg.addEventListener("click", function (e) {
    if (e.target === unzoomBtn) { unzoom(); return; }
    if (e.target === searchBtn) { if (searching) resetSearch(); else askSearch(); return; }
    var f = frameOf(e.target);
    if (f) zoom(f);
  });
  window.addEventListener("keydown", function (e) {
    if (((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F")) || e.key === "F3") {
      e.preventDefault();
      askSearch();
    } else if (e.key === "Escape") {
      resetSearch();
    }
  });

  frames.forEach(fit);
  var params = new URLSearchParams(window.location.search);
  if (params.get("z")) {
    var best = null;
    frames.forEach(function (f) {
      if (f.name.indexOf(params.get("z")) >= 0 && (!best || f.w > best.w)) best = f;
    });
    if (best) zoom(best);
  }
  if (params.get("s")) search(params.get("s"));
  svg.setAttribute("data-ready", "1");
})();
)JS";

}  // namespace loopstall
