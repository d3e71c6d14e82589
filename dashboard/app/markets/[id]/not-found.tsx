import Link from "next/link";

import { Empty } from "@/components/empty";

export default function MarketNotFound() {
  return (
    <div className="mx-auto max-w-xl py-10">
      <Empty title="Market not found">
        No market has this condition id or token id. <Link className="underline" href="/trending">Search markets</Link>
      </Empty>
    </div>
  );
}
