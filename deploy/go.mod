module homeport.dev/deploy

go 1.26.8

require homeport.dev/proto v0.0.0

replace homeport.dev/proto => ../proto
