//! The machine's processes as /proc shows them: who is whose child, and the CPU each
//! used. The CPU split and the desktop's memory both walk a process tree.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub parent: u32,
    /// CPU used (user and system), in clock ticks.
    pub ticks: u64,
    /// CPU used by its children that ended and were waited for.
    pub waited_for: u64,
}

/// Every process readable now.
pub fn table() -> HashMap<u32, Process> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state is the first, the
        // parent the second, utime and stime the 12th and 13th, cutime and cstime the
        // 14th and 15th.
        let Some((_, rest)) = text.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        table.insert(
            pid,
            Process {
                parent: number(1) as u32,
                ticks: number(11) + number(12),
                waited_for: number(13) + number(14),
            },
        );
    }
    table
}

/// Every process below `root`, not `root` itself.
pub fn descendants(table: &HashMap<u32, Process>, root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(parent) = todo.pop() {
        for (pid, process) in table {
            if process.parent == parent {
                found.push(*pid);
                todo.push(*pid);
            }
        }
    }
    found
}
