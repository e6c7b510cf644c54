module homeport.dev/proto

go 1.26.8
