/** A job's or node's state as a coloured pill. */
export function StateBadge(props: { state: string }) {
  return <span className={`badge badge-${props.state}`}>{props.state}</span>;
}
