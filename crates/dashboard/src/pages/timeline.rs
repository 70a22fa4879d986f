//! A transfer's microservices drawn on one time axis: a bar a job from its start to its end
//! (or to now, while it runs), its task count beside it, so an operator sees at a glance
//! which microservice held a transfer. Drawn on the server as SVG: no script, and the page's
//! style sheet colours it.

use std::fmt::Write;

use vellum_core::model::{Job, JobStatus, Timestamp};

use super::layout::escape;

/// One job as the timeline draws it.
pub(super) struct Bar<'a> {
    pub job: &'a Job,
    pub tasks: usize,
    pub failed: usize,
}

const WIDTH: f64 = 900.0;
const LABEL: f64 = 250.0;
const COUNT: f64 = 110.0;
const ROW: f64 = 22.0;
const AXIS: f64 = 24.0;

/// The SVG for `bars` (in the order the jobs ran); `now` ends the bars of jobs still running.
pub(super) fn svg(bars: &[Bar<'_>], now: Timestamp) -> String {
    let Some(first) = bars.iter().map(|b| b.job.started_at).min() else {
        return "<p class=\"muted\">No microservice has started yet.</p>".into();
    };
    let end_of = |b: &Bar<'_>| b.job.ended_at.unwrap_or(now).max(b.job.started_at);
    let last = bars.iter().map(end_of).max().unwrap_or(first);
    let span = seconds(first, last).max(0.001);
    let plot = WIDTH - LABEL - COUNT;
    let x = |t: Timestamp| LABEL + plot * (seconds(first, t) / span).clamp(0.0, 1.0);
    let height = AXIS + ROW * bars.len() as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"Microservices on a time axis: {} jobs over {}\">",
        bars.len(),
        duration(span)
    );
    for k in 0..=4 {
        let at = LABEL + plot * f64::from(k) / 4.0;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{at:.1}\" y1=\"{AXIS}\" x2=\"{at:.1}\" y2=\"{height}\"/>\
             <text class=\"axis\" x=\"{at:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            AXIS - 8.0,
            duration(span * f64::from(k) / 4.0)
        );
    }
    for (row, b) in bars.iter().enumerate() {
        let top = AXIS + ROW * row as f64;
        let (start, end) = (x(b.job.started_at), x(end_of(b)));
        let status = match b.job.status {
            JobStatus::Completed => "complete",
            JobStatus::Failed => "failed",
            JobStatus::Processing => "processing",
        };
        let took = seconds(b.job.started_at, end_of(b));
        let failed = if b.failed > 0 { format!(", {} failed", b.failed) } else { String::new() };
        let _ = write!(
            out,
            "<g class=\"job\" data-job=\"{}\"><title>{}: {} — {}, {} task(s){failed}, from {} to {}</title>\
             <text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"span-{status}\" x=\"{start:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" rx=\"2\"/>\
             <text class=\"count\" x=\"{}\" y=\"{}\">{} · {}</text></g>",
            b.job.uuid,
            escape(&b.job.microservice_group),
            escape(&b.job.name),
            b.job.status.as_str(),
            b.tasks,
            b.job.started_at.format("%H:%M:%S%.3f"),
            if b.job.ended_at.is_some() { end_of(b).format("%H:%M:%S%.3f").to_string() } else { "now".into() },
            LABEL - 8.0,
            top + ROW * 0.68,
            escape(&b.job.name),
            top + 4.0,
            (end - start).max(2.0),
            ROW - 8.0,
            WIDTH - COUNT + 8.0,
            top + ROW * 0.68,
            duration(took),
            tasks_word(b.tasks, b.failed),
        );
    }
    out.push_str("</svg>");
    out
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

fn duration(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 600.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

fn tasks_word(tasks: usize, failed: usize) -> String {
    match (tasks, failed) {
        (0, _) => "no tasks".into(),
        (n, 0) => format!("{n} task{}", if n == 1 { "" } else { "s" }),
        (n, f) => format!("{n} tasks, {f} failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use uuid::Uuid;

    fn job(name: &str, start: i64, end: Option<i64>, status: JobStatus) -> Job {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        Job {
            uuid: Uuid::new_v4(),
            transfer_id: Uuid::nil(),
            stage: name.to_lowercase(),
            microservice_group: "Group".into(),
            name: name.into(),
            status,
            started_at: t0 + Duration::seconds(start),
            ended_at: end.map(|e| t0 + Duration::seconds(e)),
            batches_done: 0,
            last_error: None,
            progressed_at: None,
        }
    }

    fn bar_geometry(svg: &str, job: &Job) -> (f64, f64) {
        let g = &svg[svg.find(&job.uuid.to_string()).unwrap()..];
        let rect = &g[g.find("<rect").unwrap()..];
        let attr = |name: &str| -> f64 {
            let at = rect.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            rect[at..at + rect[at..].find('"').unwrap()].parse().unwrap()
        };
        (attr("x"), attr("width"))
    }

    #[test]
    fn each_job_is_a_bar_from_its_start_to_its_end_on_one_axis() {
        let extract = job("Extract", 0, Some(10), JobStatus::Completed);
        let checksum = job("Checksum", 10, Some(40), JobStatus::Completed);
        let scan = job("Scan", 40, None, JobStatus::Processing);
        let now = scan.started_at + Duration::seconds(60);
        let bars = [
            Bar { job: &extract, tasks: 0, failed: 0 },
            Bar { job: &checksum, tasks: 12, failed: 0 },
            Bar { job: &scan, tasks: 3, failed: 1 },
        ];
        let svg = svg(&bars, now);
        // 100 s in all over the plot's width: each bar's share is its share of the time.
        let plot = WIDTH - LABEL - COUNT;
        let (x0, w0) = bar_geometry(&svg, &extract);
        let (x1, w1) = bar_geometry(&svg, &checksum);
        let (x2, w2) = bar_geometry(&svg, &scan);
        assert!((x0 - LABEL).abs() < 0.2 && (w0 - plot * 0.1).abs() < 0.2, "{x0} {w0}");
        assert!((x1 - (LABEL + plot * 0.1)).abs() < 0.2 && (w1 - plot * 0.3).abs() < 0.2, "{x1} {w1}");
        assert!((x2 + w2 - (LABEL + plot)).abs() < 0.2, "a running job reaches now: {x2} {w2}");
        assert!(svg.contains("12 tasks") && svg.contains("3 tasks, 1 failed") && svg.contains("no tasks"));
        assert!(svg.contains("class=\"span-processing\"") && svg.contains("to now</title>"));
        assert!(svg.contains(">100 s<") && svg.contains(">50 s<"), "the axis runs over the span: {svg}");
    }

    #[test]
    fn names_are_text_and_no_jobs_say_so() {
        let mut odd = job("<script>", 0, Some(1), JobStatus::Failed);
        odd.microservice_group = "A & B".into();
        let svg = svg(&[Bar { job: &odd, tasks: 1, failed: 1 }], odd.started_at);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;") && svg.contains("A &amp; B"));
        assert!(svg.contains("span-failed"));
        assert!(super::svg(&[], odd.started_at).contains("No microservice has started"));
    }
}
