import { useEffect, useState } from 'react';

/** This browser's clock (epoch ms), re-rendering every `intervalMs`, for ages that count up. */
export function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
