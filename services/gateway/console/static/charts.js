// The console's charts (charts.html): polls /console/metrics.json, turns counters into rates between two
// samples, and keeps the last KEEP samples per chart. Chart.js does the drawing; no other code here.
(function () {
  "use strict";
  const KEEP = 120;
  const root = document.getElementById("charts");
  if (!root || typeof Chart === "undefined") { return; }
  const services = JSON.parse(root.dataset.services);
  const source = root.dataset.source;
  const interval = Number(root.dataset.intervalMs) || 5000;
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];

  function lineChart(id, labels) {
    return new Chart(document.getElementById(id), {
      type: "line",
      data: { labels: [], datasets: labels.map((label, i) => ({ label: label, data: [], borderColor: palette[i % palette.length],
        backgroundColor: palette[i % palette.length], spanGaps: false, pointRadius: 1, tension: 0 })) },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true } }, plugins: { legend: { position: "bottom" } } },
    });
  }

  const charts = {
    consumed: lineChart("chart-consumed", services),
    produced: lineChart("chart-produced", services),
    decision: lineChart("chart-decision", ["median", "95th percentile"]),
    handler: lineChart("chart-handler", services),
    outbox: lineChart("chart-outbox", services),
    lag: lineChart("chart-lag", services),
  };
  let previous = null;

  function push(chart, label, values) {
    chart.data.labels.push(label);
    chart.data.datasets.forEach((ds, i) => ds.data.push(values[i] === undefined ? null : values[i]));
    if (chart.data.labels.length > KEEP) {
      chart.data.labels.shift();
      chart.data.datasets.forEach((ds) => ds.data.shift());
    }
    chart.update();
  }

  function rate(now, before, key, seconds) {
    if (!now || !before || now.error || before.error || seconds <= 0) { return null; }
    return Math.max(0, (now[key] - before[key]) / seconds);  // a restarted service starts its counters at 0
  }

  function cell(row, index, text) { row.cells[index].textContent = text; }
  function fmt(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }

  function show(sample) {
    const label = new Date(sample.at * 1000).toLocaleTimeString([], { hour12: false });
    const seconds = previous ? sample.at - previous.at : 0;
    const per = (key) => services.map((s) => previous ? rate(sample.services[s], previous.services[s], key, seconds) : null);
    const consumed = per("consumed");
    const produced = per("produced");
    const handler = services.map((s) => {
      const now = sample.services[s]; const before = previous && previous.services[s];
      if (!now || !before || now.error || before.error) { return null; }
      const count = now.handler_seconds_count - before.handler_seconds_count;
      return count > 0 ? 1000 * (now.handler_seconds_sum - before.handler_seconds_sum) / count : null;
    });
    const gauge = (key) => services.map((s) => { const v = sample.services[s]; return v && !v.error ? v[key] : null; });
    push(charts.consumed, label, consumed);
    push(charts.produced, label, produced);
    push(charts.decision, label, [sample.decision_seconds.p50, sample.decision_seconds.p95]);
    push(charts.handler, label, handler);
    push(charts.outbox, label, gauge("outbox_lag"));
    push(charts.lag, label, gauge("consumer_lag"));

    services.forEach((s, i) => {
      const row = document.querySelector('#latest-table tr[data-service="' + CSS.escape(s) + '"]');
      const v = sample.services[s];
      if (!row) { return; }
      if (!v || v.error) {
        cell(row, 1, "not reachable: " + (v ? v.error : "no answer"));
        for (let c = 2; c < row.cells.length; c++) { cell(row, c, "–"); }
        return;
      }
      cell(row, 1, previous ? fmt(consumed[i], 1) : "(next sample)");
      cell(row, 2, previous ? fmt(produced[i], 1) : "(next sample)");
      cell(row, 3, fmt(v.dead_lettered, 0));
      cell(row, 4, v.outbox_lag === null ? "not reported" : fmt(v.outbox_lag, 0));
      cell(row, 5, v.outbox_oldest_unsent_seconds === null ? "not reported" : fmt(v.outbox_oldest_unsent_seconds, 1));
      cell(row, 6, v.consumer_lag === null ? "not reported" : fmt(v.consumer_lag, 0));
    });
    const d = sample.decision_seconds;
    document.getElementById("decision-latest").textContent = d.count
      ? "Customs decision time over " + d.count + " orders of the last " + d.window_minutes + " minutes: median " +
        fmt(d.p50, 2) + " s, 95th percentile " + fmt(d.p95, 2) + " s."
      : "No customs decision on orders of the last " + d.window_minutes + " minutes.";
    root.dataset.samples = String(Number(root.dataset.samples || 0) + 1);
    previous = sample;
  }

  async function poll() {
    try {
      const response = await fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401) { window.location.assign("/console/sign-in?next=%2Fconsole%2Fcharts"); return; }
      if (response.ok) { show(await response.json()); }
    } catch (err) {
      // the gateway did not answer this time: keep the charts, try again at the next tick
    }
    // the second sample soon after the first, so the rates show at once; then every `interval`
    window.setTimeout(poll, Number(root.dataset.samples || 0) === 1 ? 1000 : interval);
  }
  poll();
})();
