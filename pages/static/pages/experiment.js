/* The experiment results page: draws its charts with Chart.js from the page's JSON, and runs the recalculate
   buttons against the experiments API with the session's cookie and CSRF token, polling until the work is done. */
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("page-data").textContent);
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  const MULTIPLE = "$multiple";
  const POLL_MS = 1000;
  const DONE_KEY = "experiment-recalculation-done:" + location.pathname;

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#1f2328";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function colour(index, alpha) {
    const hex = PALETTE[index % PALETTE.length];
    if (alpha === undefined) return hex;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }

  function tickFormat(percent) {
    return percent ? (value) => `${(value * 100).toFixed(0)}%` : (value) => value.toLocaleString();
  }

  function zeroLine(context) {
    return context.tick && context.tick.value === 0 ? "#1f2328" : "#d0d7de";
  }

  function drawExposures() {
    const canvas = document.getElementById("exposures-chart");
    if (!canvas || !data.exposures) return;
    new Chart(canvas, {
      type: "line",
      data: {
        labels: data.exposures.labels,
        datasets: data.exposures.series.map((series, index) => ({
          label: series.variant,
          data: series.counts,
          borderColor: series.variant === MULTIPLE ? "#57606a" : colour(index),
          backgroundColor: series.variant === MULTIPLE ? "#57606a" : colour(index),
          borderDash: series.variant === MULTIPLE ? [6, 4] : [],
          pointRadius: 2,
        })),
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "Exposed users" } } } },
    });
  }

  function drawIntervals(section, metric) {
    const canvases = section.querySelectorAll("canvas.interval-chart");
    if (!metric.interval || !canvases.length) return;
    // One axis for every variant of the metric, always showing zero; a one-sided interval's open end (null)
    // runs to the edge of the axis.
    const bounds = metric.interval.ranges.flat().concat(metric.interval.deltas, [0]).filter((bound) => bound !== null);
    const span = Math.max(...bounds.map(Math.abs)) * 1.1 || 1;
    const range = ([low, high]) => [low === null ? -span : low, high === null ? span : high];
    canvases.forEach((canvas) => {
      const index = Number(canvas.dataset.index);
      const verdict = metric.interval.verdicts[index];
      const fill = verdict === "win" ? "#116329" : verdict === "loss" ? "#a40e26" : "#57606a";
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: [metric.interval.labels[index]],
          datasets: [{ data: [range(metric.interval.ranges[index])], backgroundColor: fill, borderSkipped: false, barPercentage: 0.5, categoryPercentage: 1 }],
        },
        options: {
          indexAxis: "y",
          plugins: { legend: { display: false }, tooltip: { enabled: false } },
          scales: {
            x: { min: -span, max: span, ticks: { callback: tickFormat(metric.percent), stepSize: span, font: { size: 11 } }, grid: { color: zeroLine } },
            y: { display: false },
          },
        },
      });
    });
  }

  function drawCumulative(section, metric) {
    const canvas = section.querySelector("canvas.cumulative-chart");
    if (!canvas || !metric.cumulative) return;
    const datasets = [];
    metric.cumulative.series.forEach((series, index) => {
      const offset = index + 1; // colour 0 is the control's in the exposure chart
      datasets.push(
        { label: `${series.variant} upper bound`, data: series.high, borderColor: "transparent", pointRadius: 0, fill: false, band: true },
        { label: `${series.variant} interval`, data: series.low, borderColor: "transparent", backgroundColor: colour(offset, 0.2), pointRadius: 0, fill: "-1", band: true },
        { label: `${series.variant} delta`, data: series.delta, borderColor: colour(offset), backgroundColor: colour(offset), pointRadius: 2, fill: false },
      );
    });
    new Chart(canvas, {
      type: "line",
      data: { labels: metric.cumulative.labels, datasets },
      options: {
        spanGaps: false,
        plugins: { legend: { labels: { filter: (item, chart) => !chart.datasets[item.datasetIndex].band || item.text.endsWith("interval") } } },
        scales: { y: { ticks: { callback: tickFormat(metric.percent) }, grid: { color: zeroLine }, title: { display: true, text: "Delta vs control" } } },
      },
    });
  }

  function drawMetrics() {
    document.querySelectorAll("section.metric").forEach((section) => {
      const metric = data.metrics[Number(section.dataset.metricIndex)];
      drawIntervals(section, metric);
      drawCumulative(section, metric);
    });
  }

  /* Recalculation through the API, with the session and its CSRF token. */
  const statusLine = document.getElementById("recalculation-status");
  const progressRow = document.getElementById("progress-row");
  const progress = document.getElementById("recalculation-progress");
  const buttons = [document.getElementById("recalculate-timeseries"), document.getElementById("recalculate-current")];

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  async function api(url, method, body) {
    const response = await fetch(url, {
      method: method || "GET",
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const payload = await response.json().catch(() => null);
    if (!response.ok) throw new Error((payload && payload.detail) || `${response.status} ${response.statusText}`);
    return payload;
  }

  function busy(on) {
    buttons.forEach((button) => { if (button) { button.disabled = on; button.setAttribute("aria-busy", String(on)); } });
    progressRow.hidden = !on;
  }

  function report(text, done, total) {
    statusLine.textContent = text;
    if (total) { progress.max = total; progress.value = done; }
  }

  function finished(text) {
    sessionStorage.setItem(DONE_KEY, text);
    location.reload();
  }

  function failed(error) {
    busy(false);
    report(`Recalculation failed: ${error.message}`);
  }

  async function pollTimeseries() {
    busy(true);
    const query = (metric) => `${data.urls.timeseries_results}?metric_uuid=${encodeURIComponent(metric.uuid)}&fingerprint=${encodeURIComponent(metric.fingerprint)}`;
    const states = await Promise.all(data.metrics.map((metric) => api(query(metric))));
    const days = states.reduce((sum, state) => sum + Object.keys(state.timeseries).length, 0);
    const computed = states.reduce((sum, state) => sum + Object.values(state.timeseries).filter((day) => day !== null).length, 0);
    const running = states.filter((state) => state.recalculation_status !== null).length;
    if (running === 0) return finished(`Recalculation complete: ${computed} of ${days} metric-days computed.`);
    report(`Recalculating daily results: ${computed} of ${days} metric-days computed, ${running} metric(s) still running…`, computed, days);
    setTimeout(() => pollTimeseries().catch(failed), POLL_MS);
  }

  async function pollBatch(id) {
    busy(true);
    const batch = await api(`${data.urls.metrics_recalculation}/${id}/`);
    const done = batch.completed_metrics + batch.failed_metrics;
    if (batch.status === "completed") return finished(`Recalculation complete: ${batch.completed_metrics} of ${batch.total_metrics} metrics refreshed.`);
    if (batch.status === "failed") return finished(`Recalculation finished with ${batch.failed_metrics} failed metric(s): ${Object.values(batch.metric_errors).join("; ")}`);
    report(`Refreshing current results: ${done} of ${batch.total_metrics} metrics done…`, done, batch.total_metrics);
    setTimeout(() => pollBatch(id).catch(failed), POLL_MS);
  }

  async function recalculateTimeseries() {
    busy(true);
    report("Queueing the daily recalculation…");
    await Promise.all(data.metrics.map((metric) => api(data.urls.recalculate_timeseries, "POST", { metric: metric.metric, fingerprint: metric.fingerprint })));
    await pollTimeseries();
  }

  async function recalculateCurrent() {
    busy(true);
    report("Queueing the refresh of current results…");
    const batch = await api(data.urls.metrics_recalculation, "POST");
    await pollBatch(batch.id);
  }

  function wireButtons() {
    if (!buttons[0]) return;
    buttons[0].addEventListener("click", () => recalculateTimeseries().catch(failed));
    buttons[1].addEventListener("click", () => recalculateCurrent().catch(failed));
    const done = sessionStorage.getItem(DONE_KEY);
    if (done) { sessionStorage.removeItem(DONE_KEY); report(done); }
    if (data.metrics_recalculation_id) pollBatch(data.metrics_recalculation_id).catch(failed);
    else if (data.metrics.some((metric) => metric.recalculating)) pollTimeseries().catch(failed);
  }

  drawExposures();
  drawMetrics();
  wireButtons();
})();
