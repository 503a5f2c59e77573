/**
 * Bars for named quantities (a memory or step-time breakdown, lost hours by cause), drawn
 * horizontally in HTML: each category's name has a row of its own, so names never run into
 * each other whatever their length or the screen's width (a long one is cut with an ellipsis
 * and given whole in its tooltip).
 */
export function BarChart(props: {
  label: string;
  categories: readonly string[];
  values: readonly number[];
  unit: string;
  colour?: string;
  format?: (value: number) => string;
}) {
  const { label, categories, values, unit, colour = '#2a6fdb', format } = props;
  const show = format ?? ((v: number) => String(Number(v.toPrecision(3))));
  const most = Math.max(0, ...values.filter((v) => Number.isFinite(v)));
  return (
    <figure className="chart bar-chart" aria-label={label} data-points={categories.length}>
      <table className="bars">
        <tbody>
          {categories.map((name, i) => {
            const value = values[i] ?? 0;
            const share = most > 0 && Number.isFinite(value) ? Math.max(0, value) / most : 0;
            return (
              <tr key={name}>
                <th scope="row" className="bar-label" title={name}>
                  {name}
                </th>
                <td className="bar-cell">
                  <span
                    className="bar"
                    // The rest of the row is kept for the value.
                    style={{
                      width: `calc(${share.toFixed(4)} * (100% - 8em))`,
                      background: colour,
                    }}
                  />
                  <span className="bar-value">
                    {show(value)} {unit}
                  </span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </figure>
  );
}
