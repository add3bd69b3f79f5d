// A small canvas line chart: one value per second, several series, gaps where a value is null.

function niceCeiling(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function label(value) {
  if (value >= 1000) return `${Number((value / 1000).toFixed(1))}k`;
  return String(Number(value.toFixed(2)));
}

export class LineChart {
  // series: [{label, color}]; legend: a <ul> that shows each series' latest value.
  constructor(canvas, legend, series, unit = "") {
    this.canvas = canvas;
    this.legend = legend;
    this.series = series;
    this.unit = unit;
    this.values = series.map(() => []);
    this.legendValues = series.map((entry) => {
      const value = document.createElement("span");
      value.className = "legend-value";
      value.textContent = "–";
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = entry.color;
      item.append(swatch, `${entry.label}: `, value);
      legend.append(item);
      return value;
    });
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(canvas);
  }

  // values: one array per series, oldest first; `latest` the values the legend shows.
  update(values, latest) {
    this.values = values;
    latest.forEach((value, index) => {
      this.legendValues[index].textContent =
        value === null || value === undefined ? "–" : `${label(value)}${this.unit}`;
    });
    const summary = this.series
      .map((entry, index) => `${entry.label} ${this.legendValues[index].textContent}`)
      .join(", ");
    this.canvas.setAttribute("aria-label", `${this.canvas.dataset.title || ""} ${summary}`.trim());
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);

    const left = 44;
    const right = 18;
    const top = 8;
    const bottom = 20;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    let highest = 0;
    let points = 0;
    for (const values of this.values) {
      points = Math.max(points, values.length);
      for (const value of values) if (value !== null && value > highest) highest = value;
    }
    const ceiling = niceCeiling(highest);
    const style = getComputedStyle(canvas);
    context.font = `11px ${style.fontFamily}`;
    context.lineWidth = 1;

    context.fillStyle = style.getPropertyValue("--chart-text").trim() || "#333";
    context.strokeStyle = style.getPropertyValue("--chart-grid").trim() || "#ddd";
    context.textAlign = "right";
    context.textBaseline = "middle";
    for (let line = 0; line <= 4; line += 1) {
      const y = top + plotHeight - (plotHeight * line) / 4;
      context.beginPath();
      context.moveTo(left, Math.round(y) + 0.5);
      context.lineTo(left + plotWidth, Math.round(y) + 0.5);
      context.stroke();
      context.fillText(label((ceiling * line) / 4), left - 6, y);
    }
    context.textAlign = "center";
    context.textBaseline = "top";
    const span = Math.max(1, points - 1);
    for (let minutes = 5; minutes >= 0; minutes -= 1) {
      const offset = points - 1 - minutes * 60;
      if (offset < 0) continue;
      const x = left + (plotWidth * offset) / span;
      context.fillText(minutes === 0 ? "now" : `-${minutes}m`, x, top + plotHeight + 5);
    }

    context.lineWidth = 1.5;
    this.series.forEach((entry, index) => {
      const values = this.values[index] || [];
      context.strokeStyle = entry.color;
      context.beginPath();
      let drawing = false;
      values.forEach((value, position) => {
        if (value === null || value === undefined) {
          drawing = false;
          return;
        }
        const x = left + (plotWidth * position) / span;
        const y = top + plotHeight - (plotHeight * Math.min(value, ceiling)) / ceiling;
        if (drawing) context.lineTo(x, y);
        else context.moveTo(x, y);
        drawing = true;
      });
      context.stroke();
    });
  }
}
