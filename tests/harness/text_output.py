"""Reading `loopstall capture --format text` as a person does: stall lines by their columns
(TIME PID TID COMM LOOP STALL_MS CAUSE... CULPRIT...), and the summary table by its header names
(CULPRIT, the last column, is free text)."""
import re

TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$")


class StallLine:
    def __init__(self, line, more):
        w = line.split()
        self.line, self.pid, self.tid, self.ms = line, int(w[1]), int(w[2]), float(w[5])
        self.ongoing = w[6] == "ONGOING"
        self.block = "\n".join([line, *more])  # with its continuation lines (the rest of the stack)

    def __repr__(self):
        return self.block


def stall_lines(text, pid=None):
    """Every stall line (and the indented lines under it), of one pid if given."""
    out, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        w = line.split()
        if len(w) < 7 or not TIME.match(w[0]) or not w[1].isdigit():
            continue
        more = []
        for cont in lines[i + 1:]:
            if not cont.startswith("    ") or TIME.match(cont.split()[0] if cont.split() else ""):
                break
            more.append(cont)
        s = StallLine(line, more)
        if pid is None or s.pid == pid:
            out.append(s)
    return out


def summary_rows(text):
    """{pid: {column: value}} from the summary table; CULPRIT is the rest of the line."""
    lines = text.splitlines()
    heads = [i for i, l in enumerate(lines) if l.split()[:3] == ["PID", "COMM", "LOOP"]]
    if not heads:
        return {}
    cols = lines[heads[-1]].split()
    rows = {}
    for line in lines[heads[-1] + 1:]:
        w = line.split(None, len(cols) - 1)
        if len(w) < len(cols) or not w[0].isdigit():
            break
        rows[int(w[0])] = dict(zip(cols, w))
    return rows
