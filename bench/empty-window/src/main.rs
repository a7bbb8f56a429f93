//! An empty Tauri window: the yardstick for the desktop app's start-up time and idle
//! memory in the benchmark. It prints `page loaded` when its page has loaded, and
//! `page painted` once its first frame has been painted (timed as the app times its
//! first list: a task queued from the next frame's callbacks).

/// The page's first frame was painted.
#[tauri::command]
fn painted() {
    eprintln!("page painted");
}

fn main() {
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![painted])
        .on_page_load(|_, payload| {
            if matches!(payload.event(), tauri::webview::PageLoadEvent::Finished) {
                eprintln!("page loaded");
            }
        })
        .run(tauri::generate_context!());
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
