module homeport.dev/examples/hello

go 1.26.8
