import Link from "next/link";

import { Empty } from "@/components/empty";

export default function NotFound() {
  return (
    <div className="mx-auto max-w-xl py-10">
      <Empty title="Not found">
        There is no page here. <Link className="underline" href="/">Back to the overview</Link>
      </Empty>
    </div>
  );
}
