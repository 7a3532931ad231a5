# jq work for the battery: group, aggregate, sort and reshape the records.
group_by(.group)
| map({
    group: .[0].group,
    n: length,
    total: (map(.score) | add),
    mean: ((map(.score) | add) / length | floor),
    top: (sort_by(-.score, .name) | .[0:3] | map(.name)),
    tags: (map(.tags[]) | unique | length)
  })
| sort_by(-.total)
