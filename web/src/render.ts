/** Drawing on canvases: grey images, a layer's channels as small images, the curves of a run. */

/** A grey image (0–255 or [0, 1] floats) onto `canvas`, one canvas pixel per image pixel. */
export function drawGrey(canvas: HTMLCanvasElement, pixels: ArrayLike<number>, width: number, height: number, unit = false): void {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = unit ? Math.round(Math.min(1, Math.max(0, pixels[i])) * 255) : pixels[i];
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

/**
 * A layer's output [1, H, W, C] as C small images in a grid, all on one scale (black 0, white
 * the layer's largest value: ReLU outputs are ≥ 0), each `cell` px wide; or a [1, C] output as a
 * row of C cells.
 */
export function drawChannels(canvas: HTMLCanvasElement, data: Float32Array, shape: number[], maxWidth = 1000): void {
  const [h, w, c] = shape.length === 4 ? [shape[1], shape[2], shape[3]] : [1, 1, shape[1]];
  let max = 0;
  let min = 0;
  for (const v of data) { if (v > max) max = v; if (v < min) min = v; }
  const range = max - min || 1;
  const cell = Math.max(6, Math.min(48, Math.floor(Math.sqrt((maxWidth * 700) / c) / Math.max(h, w)) * Math.max(h, w)));
  const scale = Math.max(1, Math.floor(cell / Math.max(h, w)));
  const tw = w * scale;
  const th = h * scale;
  const gap = 2;
  const columns = Math.max(1, Math.min(c, Math.floor((maxWidth + gap) / (tw + gap))));
  const rows = Math.ceil(c / columns);
  canvas.width = columns * (tw + gap) - gap;
  canvas.height = rows * (th + gap) - gap;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  img.data.fill(255);
  for (let k = 0; k < c; k++) {
    const x0 = (k % columns) * (tw + gap);
    const y0 = Math.floor(k / columns) * (th + gap);
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const v = data[(Math.floor(y / scale) * w + Math.floor(x / scale)) * c + k];
        const g = Math.round(((v - min) / range) * 255);
        const o = 4 * ((y0 + y) * canvas.width + x0 + x);
        img.data[o] = g;
        img.data[o + 1] = g;
        img.data[o + 2] = g;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** A grey mosaic (lib/core's filterMosaic) scaled up `scale` times. */
export function drawMosaic(canvas: HTMLCanvasElement, mosaic: { pixels: Uint8Array; height: number; width: number }, scale: number): void {
  canvas.width = mosaic.width * scale;
  canvas.height = mosaic.height * scale;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const v = mosaic.pixels[Math.floor(y / scale) * mosaic.width + Math.floor(x / scale)];
      img.data.set([v, v, v, 255], 4 * (y * canvas.width + x));
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** The run's curves: the training loss of every step (left axis) and the test accuracy of every epoch (right, 0–1). */
export function drawCurves(canvas: HTMLCanvasElement, losses: number[], stepsPerEpoch: number, accs: number[]): void {
  const ctx = canvas.getContext('2d')!;
  const { width, height } = canvas;
  const pad = { l: 44, r: 44, t: 12, b: 28 };
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  const total = Math.max(losses.length, stepsPerEpoch * Math.max(1, accs.length), 1);
  const maxLoss = Math.max(2.5, ...losses.filter(Number.isFinite));
  const x = (step: number) => pad.l + (step / total) * (width - pad.l - pad.r);
  const yLoss = (v: number) => pad.t + (1 - v / maxLoss) * (height - pad.t - pad.b);
  const yAcc = (v: number) => pad.t + (1 - v) * (height - pad.t - pad.b);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(pad.l, pad.t, width - pad.l - pad.r, height - pad.t - pad.b);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#b3470b';
  ctx.fillText('loss', 4, pad.t + 10);
  ctx.fillText(maxLoss.toFixed(1), 4, pad.t + 24);
  ctx.fillText('0', 30, height - pad.b);
  ctx.fillStyle = '#1a5fb4';
  ctx.fillText('test acc', width - pad.r + 2, pad.t + 10);
  ctx.fillText('1.0', width - pad.r + 4, pad.t + 24);
  ctx.fillStyle = '#555';
  ctx.fillText(`step (${losses.length} so far)`, width / 2 - 40, height - 8);
  ctx.strokeStyle = '#b3470b';
  ctx.beginPath();
  losses.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i + 1), yLoss(v)) : ctx.lineTo(x(i + 1), yLoss(v))));
  ctx.stroke();
  ctx.strokeStyle = '#1a5fb4';
  ctx.fillStyle = '#1a5fb4';
  ctx.beginPath();
  accs.forEach((v, i) => (i === 0 ? ctx.moveTo(x((i + 1) * stepsPerEpoch), yAcc(v)) : ctx.lineTo(x((i + 1) * stepsPerEpoch), yAcc(v))));
  ctx.stroke();
  accs.forEach((v, i) => ctx.fillRect(x((i + 1) * stepsPerEpoch) - 3, yAcc(v) - 3, 6, 6));
}
