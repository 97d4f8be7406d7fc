// The benches' shared flag parsing: the repository shape from --gmsas, --groups and --computers,
// and the error a bad count gives (the flag named, no stack of the bench's internals needed).
import { parseArgs } from "node:util";
import { expect, it } from "vitest";
import { countFlag, shapeFromFlags, shapeOptions } from "../bench/lib/repo.ts";

it("reads the shape from the three count flags, three members per group and SPNs on every third gMSA", () => {
  expect(shapeFromFlags({ gmsas: "40", groups: "10", computers: "7" })).toEqual({
    computers: 7,
    groups: 10,
    membersPerGroup: 3,
    gmsas: 40,
    spnEvery: 3,
  });
});

it("a count that is not a positive integer is refused, naming its flag", () => {
  expect(() => shapeFromFlags({ gmsas: "40", groups: "0", computers: "7" })).toThrow(
    "--groups must be a positive integer",
  );
  expect(() => shapeFromFlags({ gmsas: "4.5", groups: "10", computers: "7" })).toThrow(
    "--gmsas must be a positive integer",
  );
  expect(() => shapeFromFlags({ gmsas: "40", groups: "10" })).toThrow("--computers must be a positive integer");
  expect(() => countFlag({ "create-runs": "three" }, "create-runs")).toThrow(
    "--create-runs must be a positive integer",
  );
  expect(countFlag({ runs: "5" }, "runs")).toBe(5);
});

it("the three flags take the bench's own defaults, and a flag given on the command line wins", () => {
  const options = {
    ...shapeOptions({ gmsas: 45000, groups: 5000, computers: 200 }),
    steady: { type: "string" },
  } as const;
  expect(shapeFromFlags(parseArgs({ args: [], options, strict: true }).values)).toMatchObject({
    gmsas: 45000,
    groups: 5000,
    computers: 200,
  });
  const given = parseArgs({ args: ["--groups", "10", "--steady", "5s"], options, strict: true }).values;
  expect(shapeFromFlags(given)).toMatchObject({ gmsas: 45000, groups: 10, computers: 200 });
  expect(given.steady).toBe("5s");
});
