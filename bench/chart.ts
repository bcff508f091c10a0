/** The delivery-latency chart, rendered to SVG headlessly with vega-lite → vega (no browser, no canvas). */
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { DeliveryResult } from './scenarios/live-delivery.ts';

export async function latencyChart(results: DeliveryResult[], title: string): Promise<string> {
  const values = results.flatMap((r) => [
    { surface: r.variant, rate: r.rate, percentile: 'p50', ms: r.latency.p50 },
    { surface: r.variant, rate: r.rate, percentile: 'p99', ms: r.latency.p99 },
  ]).filter((v) => Number.isFinite(v.ms));
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'rate', type: 'quantitative', title: 'total send rate (msg/s)', scale: { type: 'log' }, axis: { values: [500, 2000, 5000] } },
      y: { field: 'ms', type: 'quantitative', title: 'send → receive latency (ms, log)', scale: { type: 'log' } },
      color: { field: 'surface', type: 'nominal', title: 'surface' },
      strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile' },
      tooltip: [{ field: 'surface' }, { field: 'rate' }, { field: 'percentile' }, { field: 'ms', format: '.2f' }],
    },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
