/**
 * Figures for training reports, rendered to PNG: line charts of training curves (with optional EMA
 * smoothing and a shaded min–max band across seeds), grouped bar charts for result tables, and grids of
 * images (original vs masked views, sample rollouts).
 *
 * Rendering uses `@napi-rs/canvas` (Skia, shipped as an npm binary: no system libraries, text in the
 * machine's fonts).
 *
 * @since 0.1.0
 */
import { createCanvas, type SKRSContext2D } from "@napi-rs/canvas"

/**
 * One line of a chart: points (x, y), optionally with a band (y_lo, y_hi) drawn shaded behind it.
 *
 * @category models
 */
export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly band?: ReadonlyArray<readonly [number, number, number]>
  readonly color?: string
}

/**
 * A line chart.
 *
 * @category models
 */
export interface LineChart {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  /** EMA weight in [0, 1): 0 draws the raw values; otherwise the raw values are drawn faintly behind. */
  readonly smoothing?: number
  readonly width?: number
  readonly height?: number
}

/**
 * The default colour cycle (colour-blind safe, Okabe–Ito).
 *
 * @category constructors
 */
export const palette: ReadonlyArray<string> = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

const margin = { left: 64, right: 16, top: 36, bottom: 46 }

/** 1, 2 or 5 times a power of ten: round tick steps covering [lo, hi] with about n ticks. */
const ticks = (lo: number, hi: number, n = 5): Array<number> => {
  const span = hi - lo || Math.abs(hi) || 1
  const raw = span / n
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!
  const out: Array<number> = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12))
  return out
}

const fmt = (v: number): string => {
  const a = Math.abs(v)
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1)
  return String(+v.toPrecision(4))
}

/**
 * Exponential moving average, debiased as TensorBoard's smoothing.
 *
 * @example
 * ema([2, 4], 0.5) // => [2, ≈3.33]
 *
 * @category math
 */
export const ema = (ys: ReadonlyArray<number>, weight: number): Array<number> => {
  let last = 0
  let norm = 0
  return ys.map((y) => {
    last = last * weight + (1 - weight) * y
    norm = norm * weight + (1 - weight)
    return last / norm
  })
}

/**
 * Background, title, the y grid with its tick labels and the rotated y label; returns the y scale.
 */
const axes = (g: SKRSContext2D, w: number, h: number, title: string, yLabel: string, y0: number, y1: number) => {
  const ph = h - margin.top - margin.bottom
  const py = (y: number) => margin.top + (1 - (y - y0) / (y1 - y0)) * ph
  g.fillStyle = "#ffffff"
  g.fillRect(0, 0, w, h)
  g.fillStyle = "#111111"
  g.font = "bold 14px sans-serif"
  g.textAlign = "center"
  g.fillText(title, w / 2, 22)
  g.font = "11px sans-serif"
  g.strokeStyle = "#e5e5e5"
  g.lineWidth = 1
  g.fillStyle = "#444444"
  g.textAlign = "right"
  for (const t of ticks(y0, y1)) {
    g.beginPath()
    g.moveTo(margin.left, py(t))
    g.lineTo(w - margin.right, py(t))
    g.stroke()
    g.fillText(fmt(t), margin.left - 6, py(t) + 4)
  }
  g.fillStyle = "#222222"
  g.font = "12px sans-serif"
  g.save()
  g.translate(14, margin.top + ph / 2)
  g.rotate(-Math.PI / 2)
  g.textAlign = "center"
  g.fillText(yLabel, 0, 0)
  g.restore()
  return py
}

/**
 * Renders a line chart to PNG bytes. Non-finite points are skipped. Throws if no series has a point.
 *
 * @example
 * const png = lineChart({ title: "reward", xLabel: "step", yLabel: "reward", series: [{ name: "GRPO", points: [[1, 0.2], [2, 0.4]] }] })
 * png.subarray(1, 4).toString() // => "PNG"
 *
 * @category constructors
 */
export const lineChart = (chart: LineChart): Buffer => {
  const w = chart.width ?? 640
  const h = chart.height ?? 360
  const smoothing = chart.smoothing ?? 0
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`lineChart: smoothing must be in [0, 1), got ${smoothing}`)
  const finite = (p: ReadonlyArray<number>) => p.every(Number.isFinite)
  const series = chart.series.map((s, i) => ({
    ...s,
    points: s.points.filter(finite),
    band: (s.band ?? []).filter(finite),
    color: s.color ?? palette[i % palette.length]!
  }))
  const xs = series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...s.band.flatMap((b) => [b[1], b[2]])])
  if (xs.length === 0) throw new Error(`lineChart "${chart.title}": no finite points to draw`)
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)]
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)]
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1]
  if (y0 === y1) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1]
  const pad = (y1 - y0) * 0.05
  ;[y0, y1] = [y0 - pad, y1 + pad]
  const pw = w - margin.left - margin.right
  const ph = h - margin.top - margin.bottom
  const px = (x: number) => margin.left + ((x - x0) / (x1 - x0)) * pw

  const canvas = createCanvas(w, h)
  const g = canvas.getContext("2d")
  const py = axes(g, w, h, chart.title, chart.yLabel, y0, y1)
  g.font = "11px sans-serif"
  g.fillStyle = "#444444"
  g.textAlign = "center"
  for (const t of ticks(x0, x1, 6)) g.fillText(fmt(t), px(t), h - margin.bottom + 16)
  g.strokeStyle = "#888888"
  g.strokeRect(margin.left, margin.top, pw, ph)
  g.fillStyle = "#222222"
  g.font = "12px sans-serif"
  g.fillText(chart.xLabel, margin.left + pw / 2, h - 10)

  const path = (pts: ReadonlyArray<readonly [number, number]>) => {
    g.beginPath()
    pts.forEach(([x, y], i) => (i === 0 ? g.moveTo(px(x), py(y)) : g.lineTo(px(x), py(y))))
    g.stroke()
  }
  for (const s of series) {
    if (s.band.length > 1) {
      g.globalAlpha = 0.18
      g.fillStyle = s.color
      g.beginPath()
      s.band.forEach(([x, , hi], i) => (i === 0 ? g.moveTo(px(x), py(hi)) : g.lineTo(px(x), py(hi))))
      for (const [x, lo] of [...s.band].reverse()) g.lineTo(px(x), py(lo))
      g.closePath()
      g.fill()
      g.globalAlpha = 1
    }
    g.strokeStyle = s.color
    if (smoothing > 0) {
      g.globalAlpha = 0.25
      g.lineWidth = 1
      path(s.points)
      g.globalAlpha = 1
      const smooth = ema(s.points.map((p) => p[1]), smoothing)
      g.lineWidth = 2
      path(s.points.map((p, i) => [p[0], smooth[i]!] as const))
    } else {
      g.lineWidth = 2
      path(s.points)
    }
  }
  // Legend, top-left inside the plot.
  g.font = "12px sans-serif"
  g.textAlign = "left"
  series.forEach((s, i) => {
    const y = margin.top + 14 + i * 16
    g.fillStyle = s.color
    g.fillRect(margin.left + 8, y - 8, 14, 3)
    g.fillStyle = "#222222"
    g.fillText(s.name, margin.left + 28, y - 3)
  })
  return canvas.toBuffer("image/png")
}

/**
 * A grouped bar chart: one group per category, one bar per series, the value printed above each bar.
 *
 * @category models
 */
export interface BarChart {
  readonly title: string
  readonly yLabel: string
  readonly categories: ReadonlyArray<string>
  readonly series: ReadonlyArray<{ readonly name: string; readonly values: ReadonlyArray<number>; readonly color?: string }>
  readonly width?: number
  readonly height?: number
}

/**
 * Renders a grouped bar chart to PNG bytes (y axis from 0).
 *
 * @category constructors
 */
export const barChart = (chart: BarChart): Buffer => {
  const w = chart.width ?? 640
  const h = chart.height ?? 360
  for (const s of chart.series) {
    if (s.values.length !== chart.categories.length) {
      throw new Error(`barChart "${chart.title}": series "${s.name}" has ${s.values.length} values for ${chart.categories.length} categories`)
    }
  }
  const all = chart.series.flatMap((s) => s.values.filter(Number.isFinite))
  const y1 = Math.max(0, ...all) * 1.15 || 1
  const y0 = Math.min(0, ...all) * 1.15
  const pw = w - margin.left - margin.right
  const canvas = createCanvas(w, h)
  const g = canvas.getContext("2d")
  const py = axes(g, w, h, chart.title, chart.yLabel, y0, y1)
  g.font = "11px sans-serif"
  const groupW = pw / Math.max(1, chart.categories.length)
  const barW = (groupW * 0.8) / Math.max(1, chart.series.length)
  chart.categories.forEach((c, ci) => {
    const gx = margin.left + ci * groupW + groupW * 0.1
    chart.series.forEach((s, si) => {
      const v = s.values[ci]!
      if (!Number.isFinite(v)) return
      g.fillStyle = s.color ?? palette[si % palette.length]!
      const top = py(Math.max(v, 0))
      g.fillRect(gx + si * barW, top, barW * 0.92, Math.abs(py(v) - py(0)))
      g.fillStyle = "#222222"
      g.textAlign = "center"
      g.fillText(fmt(v), gx + si * barW + barW / 2, top - 4)
    })
    g.fillStyle = "#222222"
    g.textAlign = "center"
    g.font = "12px sans-serif"
    g.fillText(c, gx + groupW * 0.4, h - margin.bottom + 18)
    g.font = "11px sans-serif"
  })
  // Legend: one row under the category labels.
  g.textAlign = "left"
  g.font = "12px sans-serif"
  let lx = margin.left
  chart.series.forEach((s, i) => {
    g.fillStyle = s.color ?? palette[i % palette.length]!
    g.fillRect(lx, h - 18, 12, 10)
    g.fillStyle = "#222222"
    g.fillText(s.name, lx + 16, h - 9)
    lx += 28 + g.measureText(s.name).width
  })
  return canvas.toBuffer("image/png")
}

/**
 * One image of a grid: row-major pixels in [0, 255] (Uint8Array) or [0, 1] (Float32Array), 1, 3 or 4
 * channels, with a caption under it.
 *
 * @category models
 */
export interface GridImage {
  readonly pixels: Uint8Array | Float32Array
  readonly height: number
  readonly width: number
  readonly channels: 1 | 3 | 4
  readonly caption?: string
}

/**
 * Renders images side by side, `columns` per row, each scaled up by an integer factor with nearest-
 * neighbour sampling (so masked patches stay crisp).
 *
 * @category constructors
 */
export const imageGrid = (images: ReadonlyArray<GridImage>, options: { readonly columns?: number; readonly scale?: number } = {}): Buffer => {
  if (images.length === 0) throw new Error("imageGrid: no images")
  const scale = options.scale ?? 4
  const columns = options.columns ?? images.length
  const cellW = Math.max(...images.map((im) => im.width)) * scale + 12
  const cellH = Math.max(...images.map((im) => im.height)) * scale + 28
  const rows = Math.ceil(images.length / columns)
  const canvas = createCanvas(cellW * Math.min(columns, images.length), cellH * rows)
  const g = canvas.getContext("2d")
  g.fillStyle = "#ffffff"
  g.fillRect(0, 0, canvas.width, canvas.height)
  images.forEach((im, k) => {
    const expected = im.height * im.width * im.channels
    if (im.pixels.length !== expected) {
      throw new Error(`imageGrid: image ${k} has ${im.pixels.length} values, expected ${im.height}×${im.width}×${im.channels} = ${expected}`)
    }
    const ox = (k % columns) * cellW + 6
    const oy = Math.floor(k / columns) * cellH + 6
    const data = g.createImageData(im.width * scale, im.height * scale)
    const unit = im.pixels instanceof Float32Array ? 255 : 1
    for (let y = 0; y < im.height * scale; y++) {
      for (let x = 0; x < im.width * scale; x++) {
        const src = (Math.floor(y / scale) * im.width + Math.floor(x / scale)) * im.channels
        const dst = (y * im.width * scale + x) * 4
        const v = (c: number) => Math.max(0, Math.min(255, Math.round(im.pixels[src + c]! * unit)))
        data.data[dst] = v(0)
        data.data[dst + 1] = im.channels >= 3 ? v(1) : v(0)
        data.data[dst + 2] = im.channels >= 3 ? v(2) : v(0)
        data.data[dst + 3] = im.channels === 4 ? v(3) : 255
      }
    }
    g.putImageData(data, ox, oy)
    if (im.caption !== undefined) {
      g.fillStyle = "#222222"
      g.font = "12px sans-serif"
      g.textAlign = "left"
      g.fillText(im.caption, ox, oy + im.height * scale + 16, cellW - 8)
    }
  })
  return canvas.toBuffer("image/png")
}
