"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";

import { cn } from "@/lib/utils";

const LINKS = [
  { href: "/", label: "Overview" },
  { href: "/trending", label: "Trending" },
  { href: "/signals", label: "Signals" },
] as const;

export function Nav() {
  const path = usePathname();
  return (
    <nav className="flex items-center gap-1 text-sm" aria-label="Main">
      {LINKS.map(({ href, label }) => {
        const active = href === "/" ? path === "/" : path.startsWith(href);
        return (
          <Link key={href} href={href} className={cn("rounded-md px-2.5 py-1.5 transition-colors hover:bg-muted", active ? "bg-muted font-semibold" : "text-muted-foreground")} aria-current={active ? "page" : undefined}>
            {label}
          </Link>
        );
      })}
    </nav>
  );
}
